"""Deployments: where a flow's code is, which pool runs it, when and on what."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, field_validator

from ._base import BatonModel, ClientModel
from .limits import Description, IdempotencyKey, JsonObject, Label, Name, RunName, Tags, Text
from .runs import RetryPolicy
from .schedules import DeploymentSchedule, SchedulePolicy, assign_slugs
from .triggers import DeploymentTrigger


class GitClone(ClientModel):
    kind: Literal["git_clone"] = "git_clone"
    repository: Label
    ref: Label | None = None
    directory: Label | None = None


class SetWorkingDirectory(ClientModel):
    kind: Literal["set_working_directory"] = "set_working_directory"
    directory: Label


class PipInstallRequirements(ClientModel):
    kind: Literal["pip_install_requirements"] = "pip_install_requirements"
    requirements_file: Label = "requirements.txt"


class RunShellScript(ClientModel):
    kind: Literal["run_shell_script"] = "run_shell_script"
    script: Text


PullStep = Annotated[
    GitClone | SetWorkingDirectory | PipInstallRequirements | RunShellScript,
    Field(discriminator="kind"),
]


class CollisionStrategy(StrEnum):
    ENQUEUE = "enqueue"
    CANCEL_NEW = "cancel-new"


class ConcurrencyOptions(ClientModel):
    limit: int = Field(ge=1)
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE


class DeploymentCreate(ClientModel):
    name: Name
    flow_name: Name
    entrypoint: Label = Field(description="path/file.py:function")
    description: Description | None = None
    version: Label | None = None
    tags: Tags = Field(default_factory=list)
    parameters: JsonObject = Field(default_factory=dict)
    parameter_schema: JsonObject = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    work_pool_name: Name
    work_queue_name: Name = "default"
    job_variables: JsonObject = Field(
        default_factory=dict, description="Only variables of the work pool's job template schema."
    )
    pull_steps: list[PullStep] = Field(default_factory=list)
    concurrency: ConcurrencyOptions | None = None
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    schedules: list[DeploymentSchedule] = Field(
        default_factory=list,
        description="Each gets a slug ({kind}-{n} unless given) and, on the server, an id.",
    )
    schedule_policy: SchedulePolicy = Field(
        default_factory=SchedulePolicy,
        description="Catch-up, overlap and Late; a schedule's `policy` overrides it.",
    )
    triggers: list[DeploymentTrigger] = Field(default_factory=list)
    paused: bool = False
    task_run_events: bool = Field(
        default=False, description="Make each task-run transition of its runs an event too."
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="The flow run's timeout; unset: the flow's own."
    )
    log_prints: bool | None = Field(
        default=None, description="Capture print() as logs; unset: the flow's own."
    )

    @field_validator("schedules")
    @classmethod
    def _slugs(cls, value: list[DeploymentSchedule]) -> list[DeploymentSchedule]:
        return assign_slugs(value)


class Deployment(BatonModel):
    id: UUID
    name: str
    flow_id: UUID
    flow_name: str
    entrypoint: str
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_schema: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    work_pool_name: str
    work_queue_name: str = "default"
    job_variables: dict[str, Any] = Field(default_factory=dict)
    pull_steps: list[dict[str, Any]] = Field(default_factory=list)
    concurrency: ConcurrencyOptions | None = None
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    schedules: list[DeploymentSchedule] = Field(default_factory=list)
    schedule_policy: SchedulePolicy = Field(default_factory=SchedulePolicy)
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    paused: bool = False
    task_run_events: bool = False
    timeout_seconds: float | None = None
    log_prints: bool | None = None
    created: datetime
    updated: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="On the answer to a deploy: what was accepted but looks wrong (a schedule with "
        "no time in the future).",
    )


class DeploymentRunCreate(ClientModel):
    """A run of a deployment: parameters merged over the deployment's, validated against its schema."""

    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(
        default_factory=dict,
        description="Only variables of the work pool's job template schema; needs a deploy key "
        "(they decide what a worker executes).",
    )
    tags: Tags = Field(default_factory=list)
    name: RunName | None = None
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Makes creation idempotent. A key belongs to the run it created: the same key "
        "on another deployment is refused with 409.",
    )
    scheduled_time: datetime | None = Field(default=None, description="Now if unset.")
    parent_flow_run_id: UUID | None = Field(
        default=None, description="Set when a flow starts this run (run_deployment inside a flow)."
    )
    parent_task_run_id: UUID | None = None
