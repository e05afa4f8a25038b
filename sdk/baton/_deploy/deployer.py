"""From baton.yaml, or from a Flow in Python, to `DeploymentCreate`s sent to the server."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from baton_schemas.deployments import (
    ConcurrencyOptions,
    Deployment,
    DeploymentCreate,
    PullStep,
    SetWorkingDirectory,
)
from baton_schemas.runs import RetryPolicy
from baton_schemas.schedules import DeploymentSchedule, SchedulePolicy
from baton_schemas.triggers import DeploymentTrigger

from .._deployments import connect
from ._errors import DeployError
from .config import DeploymentSection, ProjectConfig, YamlPullStep, YamlSchedule, format_errors
from .entrypoint import entrypoint_of, load_flow
from .schema import check_parameters, parameter_schema

if TYPE_CHECKING:
    from .._definitions import FlowDefinition
    from .._transport.http import SyncBatonClient

logger = logging.getLogger("baton.deploy")
_PULL_STEPS = TypeAdapter(list[YamlPullStep])
_SCHEDULES = TypeAdapter(list[YamlSchedule])
_TRIGGERS = TypeAdapter(list[DeploymentTrigger])


@dataclass(frozen=True, slots=True)
class Planned:
    """One deployment of baton.yaml, ready to send."""

    label: str  # "deployments[0] (prod)"
    request: DeploymentCreate

    @property
    def full_name(self) -> str:
        return f"{self.request.flow_name}/{self.request.name}"


def select(config: ProjectConfig, names: Sequence[str]) -> list[tuple[int, DeploymentSection]]:
    """The deployments with these names (all of them when none is given), with their index."""
    indexed = list(enumerate(config.deployments))
    if not names:
        return indexed
    chosen = [(i, d) for i, d in indexed if d.name in names]
    missing = sorted(set(names) - {d.name for _, d in chosen})
    if missing:
        known = ", ".join(sorted({d.name for d in config.deployments}))
        names_missing = ", ".join(map(repr, missing))
        raise DeployError(f"no deployment named {names_missing} (it has: {known})")
    return chosen


def plan(config: ProjectConfig, project_dir: Path, names: Sequence[str] = ()) -> list[Planned]:
    """Load each chosen deployment's flow and build its request; raises on the first problem."""
    planned = []
    for index, section in select(config, names):
        label = f"deployments[{index}] ({section.name})"
        try:
            flow = load_flow(section.entrypoint, project_dir)
        except DeployError as exc:
            raise DeployError(f"{label}: {exc}") from exc.__cause__
        check_parameters(flow.fn, section.parameters, label)
        _check_schedule_parameters(flow, section.parameters, section.schedules or [], label)
        pull = section.pull if section.pull is not None else config.pull
        request = _build(
            label,
            flow,
            name=section.name,
            entrypoint=section.entrypoint,
            description=section.description,
            version=section.version,
            tags=section.tags,
            parameters=section.parameters,
            enforce_parameter_schema=section.enforce_parameter_schema,
            work_pool_name=section.work_pool.name,
            work_queue_name=section.work_pool.work_queue_name,
            job_variables=section.work_pool.job_variables,
            pull_steps=list(pull) if pull is not None else _local_pull(project_dir),
            concurrency=section.concurrency_limit,
            retry_policy=section.retry_policy,
            schedules=section.schedules or [],
            schedule_policy=section.schedule_policy,
            triggers=section.triggers or [],
            paused=section.paused,
            task_run_events=section.task_run_events,
            timeout_seconds=section.timeout_seconds,
            log_prints=section.log_prints,
        )
        planned.append(Planned(label, request))
    return planned


def _check_schedule_parameters(
    flow: FlowDefinition[..., Any],
    defaults: Mapping[str, Any],
    schedules: Sequence[DeploymentSchedule],
    label: str,
) -> None:
    """Each schedule's parameters, merged over the deployment's, must fit the flow's signature."""
    for index, item in enumerate(schedules):
        if item.parameters:
            check_parameters(flow.fn, {**defaults, **item.parameters}, f"{label}: schedules[{index}]")


def _local_pull(project_dir: Path) -> list[PullStep]:
    return [SetWorkingDirectory(directory=str(project_dir.resolve()))]


def _build(label: str, flow: FlowDefinition[..., Any], **fields: Any) -> DeploymentCreate:
    """The request; what the deployment leaves unset is the flow's own (`@flow(retries=3)`)."""
    fields["description"] = fields["description"] or flow.description
    fields["version"] = fields["version"] or flow.version
    if fields["retry_policy"] is None:
        fields["retry_policy"] = RetryPolicy(
            retries=flow.retries, retry_delay_seconds=flow.retry_delay_seconds
        )
    if fields.get("timeout_seconds") is None:
        fields["timeout_seconds"] = flow.timeout_seconds
    if fields.get("log_prints") is None:
        fields["log_prints"] = flow.log_prints
    if fields.get("schedule_policy", "") is None:
        del fields["schedule_policy"]
    try:
        return DeploymentCreate(flow_name=flow.name, parameter_schema=parameter_schema(flow.fn), **fields)
    except ValidationError as exc:
        raise DeployError(f"{label}: {format_errors(exc, None)}") from None


def deploy_flow(
    flow: FlowDefinition[..., Any],
    name: str,
    work_pool_name: str,
    *,
    work_queue_name: str = "default",
    entrypoint: str | None = None,
    project_dir: Path | str | None = None,
    parameters: Mapping[str, Any] | None = None,
    job_variables: Mapping[str, Any] | None = None,
    description: str | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    cron: str | None = None,
    interval: float | str | timedelta | None = None,
    rrule: str | None = None,
    timezone: str | None = None,
    schedules: Sequence[DeploymentSchedule | Mapping[str, Any]] | None = None,
    schedule_policy: SchedulePolicy | Mapping[str, Any] | None = None,
    triggers: Sequence[DeploymentTrigger | Mapping[str, Any]] | None = None,
    pull_steps: Sequence[Any] | None = None,
    concurrency_limit: int | ConcurrencyOptions | None = None,
    retry_policy: RetryPolicy | None = None,
    enforce_parameter_schema: bool = True,
    paused: bool = False,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    client: SyncBatonClient | None = None,
) -> Deployment:
    """`Flow.deploy(...)`: the Python twin of one baton.yaml entry. Retries, timeout, print
    capture, version and description default to the flow's own. `cron`, `interval` and `rrule`
    each add a schedule (in `timezone`, UTC by default) to those of `schedules`."""
    label = f"deployment {name!r} of flow {flow.name!r}"
    base = Path(project_dir).resolve() if project_dir is not None else None
    if entrypoint is None:
        entrypoint, base = entrypoint_of(flow, base)
    elif base is None:
        base = Path.cwd().resolve()
    parameters = dict(parameters or {})
    check_parameters(flow.fn, parameters, label)
    all_schedules: list[Any] = list(schedules or ())
    zone = {"timezone": timezone} if timezone is not None else {}
    for kind, value in (("cron", cron), ("interval", interval), ("rrule", rrule)):
        if value is not None:
            all_schedules.append({kind: value, **zone})
    if isinstance(concurrency_limit, int):
        concurrency_limit = ConcurrencyOptions(limit=concurrency_limit)
    try:
        steps = _PULL_STEPS.validate_python(list(pull_steps)) if pull_steps else None
        checked_schedules = _SCHEDULES.validate_python(all_schedules)
        checked_triggers = _TRIGGERS.validate_python(list(triggers or ()))
        policy = SchedulePolicy.model_validate(schedule_policy) if schedule_policy is not None else None
    except ValidationError as exc:
        raise DeployError(f"{label}: {format_errors(exc, None)}") from None
    _check_schedule_parameters(flow, parameters, checked_schedules, label)
    request = _build(
        label,
        flow,
        name=name,
        entrypoint=entrypoint,
        description=description,
        version=version,
        tags=list(tags or ()),
        parameters=parameters,
        enforce_parameter_schema=enforce_parameter_schema,
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        job_variables=dict(job_variables or {}),
        pull_steps=steps if steps is not None else _local_pull(base),
        concurrency=concurrency_limit,
        retry_policy=retry_policy,
        schedules=checked_schedules,
        schedule_policy=policy,
        triggers=checked_triggers,
        paused=paused,
        timeout_seconds=timeout_seconds,
        log_prints=log_prints,
    )
    if client is not None:
        deployment = client.create_deployment(request)
    else:
        with connect() as own:
            deployment = own.create_deployment(request)
    for warning in deployment.warnings:
        logger.warning("%s: %s", label, warning)
    return deployment
