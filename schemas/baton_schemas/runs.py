"""Flow runs and task runs, as created by clients and as read back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import IdempotencyKey, JsonObject, Label, Name, RunName, Tags
from .states import State


class RetryPolicy(BatonModel):
    """How many times a failed or crashed flow run is retried, and after what delay."""

    retries: int = Field(default=0, ge=0)
    retry_delay_seconds: float = Field(default=0, ge=0)


class FlowRunCreate(ClientModel):
    id: UUID | None = Field(default=None, description="Client-chosen id; makes creation idempotent.")
    flow_id: UUID | None = None
    flow_name: Name | None = Field(default=None, description="Registers the flow if flow_id is unset.")
    name: RunName | None = None
    parameters: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    deployment_id: UUID | None = None
    parent_task_run_id: UUID | None = None
    parent_flow_run_id: UUID | None = None
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Makes creation idempotent. A key belongs to the run it created: the same key "
        "for another deployment (or, ad hoc, another flow) is refused with 409.",
    )
    state: State | None = Field(default=None, description="Initial state; Scheduled now if unset.")
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    work_pool_name: Name | None = None
    work_queue_name: Name | None = None
    job_variables: JsonObject = Field(default_factory=dict)


class FlowRun(BatonModel):
    id: UUID
    name: str
    flow_id: UUID
    flow_name: str
    deployment_id: UUID | None = None
    parent_task_run_id: UUID | None = None
    parent_flow_run_id: UUID | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None
    state: State
    state_version: int
    run_count: int = 0
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    expected_start_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    created: datetime
    updated: datetime


class TaskInputType(StrEnum):
    TASK_RUN = "task_run"
    PARAMETER = "parameter"
    CONSTANT = "constant"


class TaskInput(BatonModel):
    """Where one argument of a task run came from: the edge of the run's dependency graph."""

    input_type: TaskInputType = TaskInputType.TASK_RUN
    id: UUID | None = Field(default=None, description="The upstream task run, for task_run inputs.")
    name: str | None = None


class TaskRunInfo(BatonModel):
    """What the tracker needs to create or update a task run from a reported state."""

    id: UUID
    flow_run_id: UUID
    name: RunName
    task_key: Label
    dynamic_key: Label = "0"
    tags: Tags = Field(default_factory=list)
    task_inputs: dict[str, list[TaskInput]] = Field(default_factory=dict)
    cache_key: Label | None = None


class TaskRun(TaskRunInfo):
    state: State
    state_version: int
    run_count: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    created: datetime
    updated: datetime
