"""Base job templates of work pools: the default of each pool type, and a check of a user's own.

A template is `{"job_configuration": {...}, "variables": <JSON Schema>}`; the worker renders it
(`baton._worker._templates`), which also owns the `process` default, so the two never differ.
"""

from __future__ import annotations

from typing import Any


def default_base_job_template(pool_type: str) -> dict[str, Any] | None:
    """A fresh copy of the default template of a pool type, or None for a type without one."""
    if pool_type == "process":
        from .._worker._templates import default_process_template

        return default_process_template()
    return None


def check_base_job_template(template: Any) -> list[str]:
    """What is wrong with a user's template (empty if nothing is)."""
    if not isinstance(template, dict):
        return ["the template must be a JSON object"]
    problems = []
    if not isinstance(template.get("job_configuration"), dict):
        problems.append("'job_configuration' must be an object")
    variables = template.get("variables")
    if not isinstance(variables, dict) or not isinstance(variables.get("properties", {}), dict):
        problems.append("'variables' must be a JSON Schema object with 'properties'")
    extra = set(template) - {"job_configuration", "variables"}
    if extra:
        problems.append(f"unknown keys {sorted(extra)}: use 'job_configuration' and 'variables'")
    return problems
