"""baton.yaml: the deployments of a project folder, read and checked before anything is sent.

    pull:                                   # default pull steps of every deployment
      - git_clone: {repository: https://github.com/me/etl.git, ref: main}
      - pip_install_requirements: {requirements_file: requirements.txt}
    deployments:
      - name: prod
        entrypoint: flows/hello.py:say_hello
        parameters: {name: world}
        tags: [team-a]
        work_pool: {name: local, work_queue_name: default, job_variables: {env: {X: "1"}}}
        concurrency_limit: {limit: 2, collision_strategy: cancel-new}   # or just 2
        retry_policy: {retries: 3, retry_delay_seconds: 10}   # default: the flow's @flow(retries=...)
        timeout_seconds: 600                    # default: the flow's own; so is log_prints
        log_prints: true
        schedules:
          - cron: "0 * * * *"
            timezone: Europe/Paris
          - interval: 10m                   # seconds, "1h30m" or "PT10M"; anchor_date sets the phase
            slug: every-ten-minutes         # {kind}-{n} if unset: cron-1, interval-1
          - rrule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"
            timezone: America/New_York
            parameters: {full: true}        # merged over the deployment's
            active: false
        schedule_policy: {catchup: latest, catchup_window: 1h, overlap: skip}
        triggers:
          - match: {baton.resource.id: "baton.flow-run.*"}
            expect: [baton.flow-run.Completed]

Pull steps are written `- step_name: {arguments}` (or with `kind:`); schedules flat as above
(or `- schedule: {kind: cron, ...}`). A deployment without pull steps gets
`set_working_directory` to the project folder, so a worker on this machine finds the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from baton_schemas.deployments import ConcurrencyOptions, PullStep
from baton_schemas.runs import RetryPolicy
from baton_schemas.schedules import DeploymentSchedule, SchedulePolicy
from baton_schemas.triggers import DeploymentTrigger

from ._errors import DeployError

FILE_NAME = "baton.yaml"
STEP_KINDS = ("git_clone", "set_working_directory", "pip_install_requirements", "run_shell_script")
# A step written with a bare value: `- run_shell_script: make build`.
_STEP_SHORTHAND = {
    "set_working_directory": "directory",
    "run_shell_script": "script",
    "pip_install_requirements": "requirements_file",
    "git_clone": "repository",
}
_SCHEDULE_KINDS = {"cron": "cron", "interval": "interval", "interval_seconds": "interval", "rrule": "rrule"}
_SCHEDULE_OUTER = ("slug", "active", "parameters", "max_scheduled_runs", "jitter", "policy")


def normalize_pull_step(step: Any) -> Any:
    """`{"git_clone": {"repository": ..., "branch": ...}}` -> `{"kind": "git_clone", ...}`."""
    if not isinstance(step, dict) or "kind" in step or len(step) != 1:
        return step
    ((kind, arguments),) = step.items()
    kind = str(kind).rsplit(".", 1)[-1]  # also accepts a dotted path ending in the step name
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown pull step {kind!r}: use one of {', '.join(STEP_KINDS)}")
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, dict):
        arguments = {_STEP_SHORTHAND[kind]: arguments}
    arguments = dict(arguments)
    if kind == "git_clone" and "branch" in arguments and "ref" not in arguments:
        arguments["ref"] = arguments.pop("branch")
    return {"kind": kind, **arguments}


def normalize_schedule(item: Any) -> Any:
    """`{"cron": "0 * * * *", "timezone": "UTC", "active": false}` -> a DeploymentSchedule's shape."""
    if isinstance(item, str):
        item = {"cron": item}
    if not isinstance(item, dict) or "schedule" in item:
        return item
    outer = {key: item[key] for key in _SCHEDULE_OUTER if key in item}
    spec = {key: value for key, value in item.items() if key not in _SCHEDULE_OUTER}
    if "kind" not in spec:
        kinds = [key for key in spec if key in _SCHEDULE_KINDS]
        if len(kinds) != 1:
            raise ValueError("a schedule needs exactly one of 'cron', 'interval' or 'rrule'")
        kind = _SCHEDULE_KINDS[kinds[0]]
        if kind == "interval":
            spec["interval_seconds"] = spec.pop(kinds[0])
        spec["kind"] = kind
    return {"schedule": spec, **outer}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkPoolSection(_Section):
    name: str
    work_queue_name: str = Field(
        default="default", validation_alias=AliasChoices("work_queue_name", "queue", "work_queue")
    )
    job_variables: dict[str, Any] = Field(default_factory=dict)


def _concurrency(value: Any) -> Any:
    return {"limit": value} if isinstance(value, int) and not isinstance(value, bool) else value


YamlPullStep = Annotated[PullStep, BeforeValidator(normalize_pull_step)]
YamlSchedule = Annotated[DeploymentSchedule, BeforeValidator(normalize_schedule)]


class DeploymentSection(_Section):
    name: str
    entrypoint: str
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    work_pool: WorkPoolSection
    pull: list[YamlPullStep] | None = None
    concurrency_limit: Annotated[ConcurrencyOptions | None, BeforeValidator(_concurrency)] = None
    retry_policy: RetryPolicy | None = None
    schedules: list[YamlSchedule] | None = None
    schedule_policy: SchedulePolicy | None = None
    triggers: list[DeploymentTrigger] | None = None
    paused: bool = False
    task_run_events: bool = False  # each task-run transition of its runs is an event too
    # Unset: the flow's own (`@flow(retries=..., timeout_seconds=..., log_prints=...)`).
    timeout_seconds: float | None = Field(default=None, gt=0)
    log_prints: bool | None = None


class ProjectConfig(_Section):
    name: str | None = None
    pull: list[YamlPullStep] | None = None
    definitions: Any = None  # a place for YAML anchors (&defaults) that deployments reuse
    deployments: list[DeploymentSection] = Field(min_length=1)


def find_config(path: Path | None = None) -> Path:
    """baton.yaml in `path` (a folder or the file itself), the working directory by default."""
    candidate = Path(path) if path is not None else Path.cwd()
    if candidate.is_dir():
        candidate = candidate / FILE_NAME
    if not candidate.is_file():
        raise DeployError(f"{candidate} does not exist: write a {FILE_NAME} (see `baton deploy --help`)")
    return candidate


def load_config(path: Path) -> ProjectConfig:
    """Parse and check a baton.yaml; a DeployError says which deployment and field is wrong."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DeployError(f"{path.name}{where}: not valid YAML: {exc.problem or exc}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"{path.name}: cannot read it: {exc}") from None
    if not isinstance(raw, dict):
        raise DeployError(f"{path.name}: expected a mapping with a 'deployments:' list")
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise DeployError(f"{path.name}: {format_errors(exc, raw)}") from None


def format_errors(exc: ValidationError, raw: Any) -> str:
    """`deployments[1] (prod): work_pool.name: Field required; ...`"""
    lines = []
    for error in exc.errors(include_url=False):
        lines.append(f"{_where(error.get('loc', ()), raw)}: {_message(error)}")
    return "; ".join(dict.fromkeys(lines))


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return message.removeprefix("Value error, ")


_TAGS = frozenset({*STEP_KINDS, "cron", "interval", "rrule"})


def _where(loc: Sequence[int | str], raw: Any) -> str:
    """`("deployments", 1, "pull", 0, "git_clone", "repository")` ->
    `deployments[1] (prod): pull[0].repository`."""
    head = ""
    parts: list[str] = []
    previous: int | str | None = None
    for key in loc:
        if isinstance(key, int) and not head and parts == ["deployments"]:
            name = _deployment_name(raw, key)
            head, parts = f"deployments[{key}]" + (f" ({name})" if name else ""), []
        elif isinstance(key, int):
            if parts:
                parts[-1] += f"[{key}]"
        elif key in _TAGS and (isinstance(previous, int) or previous == "schedule"):
            pass  # the tag pydantic adds to the location of a tagged union's member
        elif key == "schedule" and isinstance(previous, int) and parts and parts[-1].startswith("schedules["):
            pass  # baton.yaml writes a schedule's fields flat: `- cron: ...`
        else:
            parts.append(key)
        previous = key
    rest = ".".join(parts)
    return f"{head}: {rest}" if head and rest else head or rest or "(top level)"


def _deployment_name(raw: Any, index: int) -> str | None:
    items = raw.get("deployments") if isinstance(raw, dict) else None
    if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
        name = items[index].get("name")
        return str(name) if name else None
    return None
