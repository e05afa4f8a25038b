"""Deployments: upsert by flow and name, reads, and runs created from them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from jsonschema.exceptions import SchemaError

from baton_schemas import utcnow
from baton_schemas.deployments import (
    ConcurrencyOptions,
    Deployment,
    DeploymentCreate,
    DeploymentRunCreate,
)
from baton_schemas.flows import FlowCreate
from baton_schemas.pools import WorkQueueCreate
from baton_schemas.runs import FlowRun, FlowRunCreate, RetryPolicy
from baton_schemas.schedules import DeploymentSchedule
from baton_schemas.states import Scheduled
from jsonschema import Draft202012Validator

from ..broker.outbox import OutboxRow
from ..router.templating import template_errors
from .automations import AutomationExists, sync_deployment_triggers
from .flow_runs import create_flow_run
from .flows import get_or_create_flow
from .job_variables import check_job_variables, job_variable_errors
from .pools import NotFound, create_queue, get_pool
from .schedules import keep_ids, schedule_warnings
from .types import Connection


class InvalidParameters(ValueError):
    """Parameters that do not match the deployment's schema: one entry per problem."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


_COLUMNS = "d.*, f.name AS flow_name"


def _deployment(row: asyncpg.Record) -> Deployment:
    limit = row["concurrency_limit"]
    return Deployment(
        id=row["id"],
        name=row["name"],
        flow_id=row["flow_id"],
        flow_name=row["flow_name"],
        entrypoint=row["entrypoint"],
        description=row["description"],
        version=row["version"],
        tags=list(row["tags"]),
        parameters=row["parameters"],
        parameter_schema=row["parameter_schema"],
        enforce_parameter_schema=row["enforce_parameter_schema"],
        work_pool_name=row["work_pool_name"],
        work_queue_name=row["work_queue_name"],
        job_variables=row["job_variables"],
        pull_steps=row["pull_steps"],
        concurrency=(
            ConcurrencyOptions(limit=limit, collision_strategy=row["collision_strategy"])
            if limit is not None
            else None
        ),
        retry_policy=RetryPolicy(retries=row["retries"], retry_delay_seconds=row["retry_delay_seconds"]),
        schedules=row["schedules"],
        schedule_policy=row["schedule_policy"],
        triggers=row["triggers"],
        paused=row["paused"],
        task_run_events=row["task_run_events"],
        timeout_seconds=row["timeout_seconds"],
        log_prints=row["log_prints"],
        created=row["created"],
        updated=row["updated"],
    )


def _check_schema(schema: dict[str, Any]) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidParameters(
            [{"loc": ["body", "parameter_schema"], "msg": exc.message, "type": "schema"}]
        ) from exc


def _check_schedule_parameters(create: DeploymentCreate) -> None:
    """Each schedule's parameters, merged over the deployment's, must fit the parameter schema."""
    if not create.enforce_parameter_schema or not create.parameter_schema:
        return
    errors = []
    for index, item in enumerate(create.schedules):
        if item.parameters:
            merged = {**create.parameters, **item.parameters}
            errors += parameter_errors(
                create.parameter_schema,
                merged,
                ("body", "schedules", index, "parameters"),
                only=item.parameters,
            )
    if errors:
        raise InvalidParameters(errors)


async def upsert_deployment(conn: Connection, create: DeploymentCreate) -> tuple[Deployment, bool]:
    """Create or update the deployment named `create.name` of flow `create.flow_name`. Its
    schedules keep their ids where their slugs are the same as before."""
    if create.parameter_schema:
        _check_schema(create.parameter_schema)
    _check_schedule_parameters(create)
    async with conn.transaction():
        pool = await get_pool(conn, create.work_pool_name)  # NotFound: "work pool 'x' does not exist"
        errors = job_variable_errors(
            pool.base_job_template, create.job_variables, pool=pool.name, loc=("body", "job_variables")
        )
        if errors:
            raise InvalidParameters(errors)
        await create_queue(
            conn, create.work_pool_name, WorkQueueCreate(name=create.work_queue_name), exist_ok=True
        )
        flow = await get_or_create_flow(conn, FlowCreate(name=create.flow_name))
        previous = await conn.fetchval(
            "SELECT schedules FROM deployments WHERE flow_id = $1 AND name = $2 FOR UPDATE",
            flow.id,
            create.name,
        )
        schedules = keep_ids([DeploymentSchedule.model_validate(s) for s in previous or []], create.schedules)
        row = await conn.fetchrow(
            """INSERT INTO deployments AS d (id, name, flow_id, entrypoint, description, version,
                   tags, parameters, parameter_schema, enforce_parameter_schema, work_pool_name,
                   work_queue_name, job_variables, pull_steps, concurrency_limit,
                   collision_strategy, retries, retry_delay_seconds, schedules, triggers, paused,
                   task_run_events, schedule_policy, timeout_seconds, log_prints)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21, $22, $23, $24, $25)
               ON CONFLICT (flow_id, name) DO UPDATE SET
                   entrypoint = EXCLUDED.entrypoint, description = EXCLUDED.description,
                   version = EXCLUDED.version, tags = EXCLUDED.tags,
                   parameters = EXCLUDED.parameters, parameter_schema = EXCLUDED.parameter_schema,
                   enforce_parameter_schema = EXCLUDED.enforce_parameter_schema,
                   work_pool_name = EXCLUDED.work_pool_name,
                   work_queue_name = EXCLUDED.work_queue_name,
                   job_variables = EXCLUDED.job_variables, pull_steps = EXCLUDED.pull_steps,
                   concurrency_limit = EXCLUDED.concurrency_limit,
                   collision_strategy = EXCLUDED.collision_strategy,
                   retries = EXCLUDED.retries, retry_delay_seconds = EXCLUDED.retry_delay_seconds,
                   schedules = EXCLUDED.schedules, triggers = EXCLUDED.triggers,
                   paused = EXCLUDED.paused, task_run_events = EXCLUDED.task_run_events,
                   schedule_policy = EXCLUDED.schedule_policy,
                   timeout_seconds = EXCLUDED.timeout_seconds, log_prints = EXCLUDED.log_prints,
                   updated = now()
               RETURNING id, (xmax = 0) AS created""",
            uuid.uuid4(),
            create.name,
            flow.id,
            create.entrypoint,
            create.description,
            create.version,
            create.tags,
            create.parameters,
            create.parameter_schema,
            create.enforce_parameter_schema,
            create.work_pool_name,
            create.work_queue_name,
            create.job_variables,
            [step.model_dump(mode="json") for step in create.pull_steps],
            create.concurrency.limit if create.concurrency else None,
            create.concurrency.collision_strategy.value if create.concurrency else "enqueue",
            create.retry_policy.retries,
            create.retry_policy.retry_delay_seconds,
            [s.model_dump(mode="json") for s in schedules],
            [t.model_dump(mode="json") for t in create.triggers],
            create.paused,
            create.task_run_events,
            # what the deployment sets (durations in seconds): the rest falls to its pool, then the defaults
            create.schedule_policy.model_dump(mode="json", exclude_unset=True),
            create.timeout_seconds,
            create.log_prints,
        )
        assert row is not None
        deployment = await get_deployment(conn, row["id"])
        await _sync_triggers(conn, deployment, create)
    deployment.warnings = schedule_warnings(deployment.schedules, utcnow())
    return deployment, bool(row["created"])


async def _sync_triggers(conn: Connection, deployment: Deployment, create: DeploymentCreate) -> None:
    """The deployment's triggers become automations running it (updated in place on redeploy)."""
    errors = []
    for index, trigger in enumerate(create.triggers):
        errors += template_errors(trigger.parameters, ("body", "triggers", index, "parameters"))
    if errors:
        raise InvalidParameters(errors)
    try:
        await sync_deployment_triggers(conn, deployment, create.triggers)
    except AutomationExists as exc:
        raise InvalidParameters([{"loc": ["body", "triggers"], "msg": str(exc), "type": "exists"}]) from exc


async def get_deployment(conn: Connection, deployment_id: uuid.UUID) -> Deployment:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM deployments d JOIN flows f ON f.id = d.flow_id WHERE d.id = $1",
        deployment_id,
    )
    if row is None:
        raise NotFound(f"deployment {deployment_id} does not exist")
    return _deployment(row)


async def get_deployment_by_name(conn: Connection, flow_name: str, name: str) -> Deployment:
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM deployments d JOIN flows f ON f.id = d.flow_id
            WHERE f.name = $1 AND d.name = $2""",
        flow_name,
        name,
    )
    if row is None:
        raise NotFound(f"deployment {flow_name}/{name} does not exist")
    return _deployment(row)


async def list_deployments(conn: Connection, flow_name: str | None = None) -> list[Deployment]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM deployments d JOIN flows f ON f.id = d.flow_id
            WHERE $1::text IS NULL OR f.name = $1 ORDER BY f.name, d.name""",
        flow_name,
    )
    return [_deployment(r) for r in rows]


async def delete_deployment(conn: Connection, deployment_id: uuid.UUID) -> None:
    result = await conn.execute("DELETE FROM deployments WHERE id = $1", deployment_id)
    if result.endswith(" 0"):
        raise NotFound(f"deployment {deployment_id} does not exist")


def validate_parameters(deployment: Deployment, parameters: dict[str, Any]) -> None:
    """Raise InvalidParameters naming each field that does not fit the deployment's schema."""
    if not deployment.enforce_parameter_schema or not deployment.parameter_schema:
        return
    errors = parameter_errors(deployment.parameter_schema, parameters, ("body", "parameters"))
    if errors:
        raise InvalidParameters(errors)


def parameter_errors(
    schema: dict[str, Any],
    parameters: dict[str, Any],
    loc: tuple[str | int, ...],
    *,
    only: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One error per field of `parameters` that does not fit `schema`, located under `loc`.
    With `only`, the errors about other top-level fields are left out (a schedule answers for
    its own parameters, not for a required one the deployment lacks: a run may supply it)."""
    validator = Draft202012Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(parameters), key=lambda e: list(e.path)):
        path = [str(p) for p in error.path]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            path += missing[:1]
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            path += sorted(set(error.instance) - allowed)[:1]
        if only is not None and (not path or path[0] not in only):
            continue
        errors.append({"loc": [*loc, *path], "msg": error.message, "type": str(error.validator)})
    return errors


async def create_deployment_run(
    conn: Connection, deployment: Deployment, request: DeploymentRunCreate, *, dispatch_within: float
) -> tuple[FlowRun, list[OutboxRow], bool]:
    """Create a run of a deployment; one due within `dispatch_within` seconds is dispatched in
    the same transaction."""
    from ..scheduler.dispatch import dispatch_runs

    parameters = {**deployment.parameters, **request.parameters}
    validate_parameters(deployment, parameters)
    await check_job_variables(conn, deployment.work_pool_name, request.job_variables)
    async with conn.transaction():
        run, rows, created = await create_flow_run(
            conn,
            FlowRunCreate(
                flow_id=deployment.flow_id,
                name=request.name,
                parameters=parameters,
                tags=sorted({*deployment.tags, *request.tags}),
                deployment_id=deployment.id,
                parent_flow_run_id=request.parent_flow_run_id,
                parent_task_run_id=request.parent_task_run_id,
                idempotency_key=request.idempotency_key,
                state=Scheduled(request.scheduled_time),
                retry_policy=deployment.retry_policy,
                work_pool_name=deployment.work_pool_name,
                work_queue_name=deployment.work_queue_name,
                job_variables=request.job_variables,
            ),
        )
        if created:
            rows += await dispatch_runs(conn, [run.id], within_seconds=dispatch_within)
    return run, rows, created
