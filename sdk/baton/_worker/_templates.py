"""Job templates: a pool's `base_job_template` rendered with a run's job variables.

A template is `{"job_configuration": {...}, "variables": {JSON Schema}}`. Strings in the job
configuration may hold `{{ name }}` placeholders: a string that is only a placeholder takes the
variable's value whatever its type (a dict for `env`, a bool for `stream_output`); a
placeholder inside other text is replaced by the value as text. Values are the schema's
defaults, overridden by the dispatch's job variables (which the server already merged: pool
defaults < deployment < run). A key whose whole value is a placeholder with no value is left
out, so the infrastructure's own default applies.

    config = ProcessJobConfiguration.from_template(template, job_variables)
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton_schemas.job_templates import default_process_template, template_defaults

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_MISSING = object()


def _lookup(values: dict[str, Any], name: str) -> Any:
    if name in values:
        return values[name]
    current: Any = values
    for part in name.split("."):  # {{ a.b }} reads a nested value
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _text(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(value: Any, values: dict[str, Any]) -> Any:
    """`value` with every placeholder replaced; `_MISSING` for a lone placeholder without value."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return _lookup(values, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: _text(_lookup(values, m.group(1))), value)
    if isinstance(value, dict):
        rendered = {key: render(item, values) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not _MISSING}
    if isinstance(value, list):
        return [item for item in (render(item, values) for item in value) if item is not _MISSING]
    return value


def render_job_configuration(template: dict[str, Any], job_variables: dict[str, Any]) -> dict[str, Any]:
    """The job configuration of `template` (the default process one if empty) for these variables."""
    if not template or "job_configuration" not in template:
        template = default_process_template()
    values = {**template_defaults(template), **job_variables}
    rendered = render(template.get("job_configuration") or {}, values)
    return rendered if isinstance(rendered, dict) else {}


class JobConfigurationError(ValueError):
    """A job variable has a value the infrastructure cannot use."""


@dataclass(frozen=True, slots=True)
class ProcessJobConfiguration:
    """What the `process` infrastructure needs to start a flow run's process."""

    command: list[str] | None = None  # None: Baton's own entry (and pre-started processes)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: Path | None = None
    stream_output: bool = True

    @classmethod
    def from_template(
        cls, template: dict[str, Any], job_variables: dict[str, Any]
    ) -> ProcessJobConfiguration:
        config = render_job_configuration(template, job_variables)
        return cls.from_configuration(config)

    @classmethod
    def from_configuration(cls, config: dict[str, Any]) -> ProcessJobConfiguration:
        command = config.get("command")
        if isinstance(command, str):
            argv: list[str] | None = shlex.split(command) or None
        elif isinstance(command, list):
            argv = [str(part) for part in command] or None
        elif command is None:
            argv = None
        else:
            raise JobConfigurationError(f"job variable 'command' must be a string or a list, not {command!r}")
        env = config.get("env") or {}
        if not isinstance(env, dict):
            raise JobConfigurationError(f"job variable 'env' must be an object, not {env!r}")
        working_dir = config.get("working_dir")
        stream_output = config.get("stream_output", True)
        if isinstance(stream_output, str):
            stream_output = stream_output.strip().lower() not in ("false", "0", "no", "off", "")
        return cls(
            command=argv,
            env={str(key): _text(value) for key, value in env.items() if value is not None},
            working_dir=Path(str(working_dir)).expanduser() if working_dir else None,
            stream_output=bool(stream_output),
        )
