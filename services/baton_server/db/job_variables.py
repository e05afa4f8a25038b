"""Job variables are checked against the work pool's job template before they are stored.

A pool's `base_job_template` declares its variables as a JSON Schema (`variables`); an empty
template means the `process` infrastructure's own (the worker renders it the same way). A
variable the template does not declare would be ignored by the worker, so it is refused with
the list of those that exist; a declared one must match its schema. Required variables are not
enforced here: a deployment's and a run's variables are merged over the template's defaults.
"""

from __future__ import annotations

from typing import Any

from baton_schemas.job_templates import default_process_template
from jsonschema import Draft202012Validator

from .types import Connection


class InvalidJobVariables(ValueError):
    """One entry per problem, as in a 422's `detail`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def declared_variables(template: dict[str, Any]) -> dict[str, Any]:
    """The template's variables schema, or the process infrastructure's for an empty template."""
    if not template or "job_configuration" not in template:
        template = default_process_template()
    variables = template.get("variables") or {}
    return variables if isinstance(variables, dict) else {}


def job_variable_errors(
    template: dict[str, Any], values: dict[str, Any], *, pool: str, loc: tuple[str, ...]
) -> list[dict[str, Any]]:
    schema = declared_variables(template)
    properties: dict[str, Any] = schema.get("properties") or {}
    errors: list[dict[str, Any]] = []
    for name in sorted(set(values) - set(properties)):
        known = ", ".join(sorted(properties)) or "none"
        errors.append(
            {
                "loc": [*loc, name],
                "msg": f"work pool {pool!r} has no job variable {name!r} (its template declares: {known})",
                "type": "unknown_job_variable",
            }
        )
    for name in sorted(set(values) & set(properties)):
        spec = properties[name]
        if not isinstance(spec, dict):
            continue
        for error in Draft202012Validator(spec).iter_errors(values[name]):
            errors.append(
                {
                    "loc": [*loc, name, *(str(p) for p in error.path)],
                    "msg": f"job variable {name!r}: {error.message}",
                    "type": str(error.validator),
                }
            )
    return errors


async def pool_template(conn: Connection, pool: str) -> dict[str, Any] | None:
    template: dict[str, Any] | None = await conn.fetchval(
        "SELECT base_job_template FROM work_pools WHERE name = $1", pool
    )
    return template


async def check_job_variables(
    conn: Connection, pool: str, values: dict[str, Any], *, loc: tuple[str, ...] = ("body", "job_variables")
) -> None:
    """Raise InvalidJobVariables for variables `pool`'s template does not declare or accept."""
    if not values:
        return
    template = await pool_template(conn, pool)
    if template is None:
        return  # an unknown pool is refused by whoever needs it, with its own message
    errors = job_variable_errors(template, values, pool=pool, loc=loc)
    if errors:
        raise InvalidJobVariables(errors)


async def check_run_job_variables(conn: Connection, pool: str | None, values: dict[str, Any]) -> None:
    """For a run created directly (not from a deployment): variables need a pool to mean anything."""
    if not values:
        return
    if pool is None:
        raise InvalidJobVariables(
            [
                {
                    "loc": ["body", "job_variables"],
                    "msg": "job variables need a work pool (work_pool_name) whose template declares them",
                    "type": "job_variables_without_pool",
                }
            ]
        )
    await check_job_variables(conn, pool, values)
