"""Work pools' base job templates: the shape the server stores and the worker renders.

A template is `{"job_configuration": {...}, "variables": <JSON Schema>}`. Strings of the job
configuration may hold `{{ name }}` placeholders, filled with the run's job variables: the
variables' schema defaults, overridden by the pool's, the deployment's and the run's values
(the server merges them into the dispatch; the worker renders, see `baton._worker._templates`).
Each pool type has a default template; `process` is the one Baton ships.
"""

from __future__ import annotations

from typing import Any


def default_process_template() -> dict[str, Any]:
    """The job template of a `process` pool: what `serve()` and an empty template use."""
    return {
        "job_configuration": {
            "command": "{{ command }}",
            "env": "{{ env }}",
            "working_dir": "{{ working_dir }}",
            "stream_output": "{{ stream_output }}",
        },
        "variables": {
            "type": "object",
            "properties": {
                "command": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "The command that runs the flow; empty: Baton's own "
                    "(`python -m baton._worker`).",
                },
                "env": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "default": {},
                    "description": "Environment variables set for the flow run's process.",
                },
                "working_dir": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "Where the process starts; empty: a fresh temporary "
                    "directory if the deployment has pull steps, else the worker's.",
                },
                "stream_output": {
                    "type": "boolean",
                    "default": True,
                    "description": "Echo the process's output on the worker's console.",
                },
            },
        },
    }


def template_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The defaults its variables' schema declares."""
    properties = (template.get("variables") or {}).get("properties") or {}
    return {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }


def default_base_job_template(pool_type: str) -> dict[str, Any] | None:
    """A fresh copy of the default template of a pool type, or None for a type without one."""
    if pool_type == "process":
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
