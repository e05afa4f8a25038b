"""Automations: a trigger and the actions it fires, and the record of every firing.

Action fields marked "templated" are rendered by the router's sandboxed Jinja2 with `event`
(the event that fired it), `events` (every event that counted), `automation`, `trigger` and,
when the event is about a flow run, `flow_run`. A value that is one expression alone
(`"{{ event.payload.total }}"`) keeps its type (a number, a list, a dict); text around an
expression makes a string.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import Description, Name
from .triggers import Duration, Trigger

MAX_ACTIONS = 20
MAX_WEBHOOK_RETRIES = 10
MAX_WEBHOOK_TIMEOUT_SECONDS = 60.0


class RunDeployment(ClientModel):
    type: Literal["run-deployment"] = "run-deployment"
    deployment: str = Field(min_length=1, description="'flow/deployment' or the deployment's id.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Templated.")
    job_variables: dict[str, Any] = Field(default_factory=dict)
    delay: Duration = Field(default=0, description="Schedule the run this long after the firing.")


class _RunTarget(ClientModel):
    flow_run: str | None = Field(
        default=None, description="A run's id (templated); the event's flow run if unset."
    )


class CancelFlowRun(_RunTarget):
    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class PauseRun(_RunTarget):
    """Hold a run that has not started (Paused): it is not dispatched until resumed. A running
    flow pauses itself (`pause_flow_run`); suspend-run stops one from outside."""

    type: Literal["pause-run"] = "pause-run"
    timeout: Duration = Field(default=3600, description="Fail the run if not resumed by then (0: never).")


class SuspendRun(_RunTarget):
    """Suspend a run: one that has started has its process stopped; resumed, it is started again."""

    type: Literal["suspend-run"] = "suspend-run"
    timeout: Duration = Field(default=3600, description="Fail the run if not resumed by then (0: never).")


class ResumeRun(_RunTarget):
    type: Literal["resume-run"] = "resume-run"
    run_input: dict[str, Any] | None = Field(
        default=None, description="The input the pause waits for (templated), checked against its schema."
    )


class _Toggle(ClientModel):
    pass


class PauseDeployment(_Toggle):
    type: Literal["pause-deployment"] = "pause-deployment"
    deployment: str | None = Field(
        default=None, description="'flow/deployment' or an id; the event's related deployment if unset."
    )


class ResumeDeployment(_Toggle):
    type: Literal["resume-deployment"] = "resume-deployment"
    deployment: str | None = None


class PauseSchedule(_Toggle):
    type: Literal["pause-schedule"] = "pause-schedule"
    deployment: str | None = Field(
        default=None, description="'flow/deployment' or an id; the event's related deployment if unset."
    )
    schedule: str | None = Field(
        default=None, description="A schedule's slug or id; every schedule of the deployment if unset."
    )


class ResumeSchedule(_Toggle):
    type: Literal["resume-schedule"] = "resume-schedule"
    deployment: str | None = None
    schedule: str | None = None


class PauseWorkPool(_Toggle):
    type: Literal["pause-work-pool"] = "pause-work-pool"
    work_pool: str | None = Field(default=None, description="A pool's name; the event's if unset.")


class ResumeWorkPool(_Toggle):
    type: Literal["resume-work-pool"] = "resume-work-pool"
    work_pool: str | None = None


class PauseWorkQueue(_Toggle):
    type: Literal["pause-work-queue"] = "pause-work-queue"
    work_pool: str | None = Field(default=None, description="The queue's pool; the event's if unset.")
    work_queue: str | None = Field(default=None, description="The queue's name; the event's if unset.")


class ResumeWorkQueue(_Toggle):
    type: Literal["resume-work-queue"] = "resume-work-queue"
    work_pool: str | None = None
    work_queue: str | None = None


class PauseAutomation(_Toggle):
    type: Literal["pause-automation"] = "pause-automation"
    automation: str | None = Field(default=None, description="An automation's name; this one if unset.")


class ResumeAutomation(_Toggle):
    type: Literal["resume-automation"] = "resume-automation"
    automation: str | None = None


class CallWebhook(ClientModel):
    type: Literal["call-webhook"] = "call-webhook"
    url: str = Field(min_length=1, max_length=2048, description="Templated.")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    body: str | None = Field(default=None, max_length=64 * 1024, description="Templated.")
    headers: dict[str, str] = Field(default_factory=dict, description="Values templated.")
    timeout: float = Field(default=10.0, gt=0, le=MAX_WEBHOOK_TIMEOUT_SECONDS)
    retries: int = Field(default=3, ge=0, le=MAX_WEBHOOK_RETRIES)


class EmitEvent(ClientModel):
    type: Literal["emit-event"] = "emit-event"
    event: str = Field(min_length=1, description="The name (templated).")
    resource: dict[str, str] = Field(default_factory=dict, description="Values templated.")
    payload: dict[str, Any] = Field(default_factory=dict, description="Templated.")


Action = Annotated[
    RunDeployment
    | CancelFlowRun
    | PauseRun
    | SuspendRun
    | ResumeRun
    | PauseDeployment
    | ResumeDeployment
    | PauseSchedule
    | ResumeSchedule
    | PauseWorkPool
    | ResumeWorkPool
    | PauseWorkQueue
    | ResumeWorkQueue
    | PauseAutomation
    | ResumeAutomation
    | CallWebhook
    | EmitEvent,
    Field(discriminator="type"),
]


class AutomationCreate(ClientModel):
    name: Name
    description: Description | None = None
    enabled: bool = True
    trigger: Trigger
    actions: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)
    actions_on_trigger: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)
    actions_on_resolve: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)


class Automation(BatonModel):
    id: UUID
    name: str
    description: str | None = None
    enabled: bool
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    actions_on_trigger: list[dict[str, Any]] = Field(default_factory=list)
    actions_on_resolve: list[dict[str, Any]] = Field(default_factory=list)
    deployment_id: UUID | None = Field(default=None, description="Set for a deployment's trigger.")
    revision: int
    created: datetime
    updated: datetime


class FiringKind(StrEnum):
    TRIGGERED = "triggered"
    RESOLVED = "resolved"


class ActionOutcome(BatonModel):
    index: int
    type: str
    ok: bool | None = Field(description="None while it has not run yet (a webhook after commit).")
    detail: str = ""
    flow_run_id: UUID | None = None


class Firing(BatonModel):
    id: UUID
    automation_id: UUID
    automation_name: str
    kind: FiringKind
    key: str = Field(description="The idempotency key: automation, trigger, bucket, event.")
    trigger_path: str
    bucket_key: str
    event_ids: list[UUID]
    ok: bool | None
    actions: list[ActionOutcome]
    created: datetime


class FiringPage(BatonModel):
    items: list[Firing]


__all__ = [
    "Action",
    "ActionOutcome",
    "Automation",
    "AutomationCreate",
    "CallWebhook",
    "CancelFlowRun",
    "EmitEvent",
    "Firing",
    "FiringKind",
    "FiringPage",
    "PauseAutomation",
    "PauseDeployment",
    "PauseRun",
    "PauseSchedule",
    "PauseWorkPool",
    "PauseWorkQueue",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeRun",
    "ResumeSchedule",
    "ResumeWorkPool",
    "ResumeWorkQueue",
    "RunDeployment",
    "SuspendRun",
]
