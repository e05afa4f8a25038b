"""Every message that crosses RabbitMQ, one model each, with `schema_version`.

Tracker messages (exchange `baton.tracker`) share a `kind` discriminator so one queue carries
them all. RPC requests (`propose_state`, `create_flow_run`) carry `reply_to` and
`correlation_id` as AMQP properties and are answered with an `RpcReply`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field

from ._base import BatonModel, Envelope, utcnow
from .limits import Label, Name
from .logs import LogRecord
from .runs import FlowRun, FlowRunCreate, TaskRunInfo
from .states import State, StateType, TransitionResult


class Claim(Envelope):
    """Who takes a run on Scheduled -> Pending, and for how long before heartbeats must renew."""

    worker_id: Label
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)


class StateProposal(BatonModel):
    """A proposed flow-run transition, however it travels: `ProposeState` on the broker, or
    `SetState`, the body of `POST /api/flow_runs/{id}/set_state` (the run is in the path).
    Both carry every field here, so a proposal means the same by either road."""

    state: State
    transition_id: UUID = Field(
        default_factory=uuid4, description="Same id, same answer: makes retries safe."
    )
    claim: Claim | None = Field(
        default=None,
        description=(
            "With a Pending state: the proposer claims the run (Scheduled -> Pending). The server "
            "records the worker and the claim id (this proposal's transition id) and a lease."
        ),
    )
    claim_id: UUID | None = Field(
        default=None,
        description=(
            "The claim the proposer works under (the transition id of its Pending claim). A run "
            "claimed again since then answers ABORT: a process left over from a dead worker "
            "cannot end a run another worker is running."
        ),
    )
    force: bool = Field(default=False, description="Skip the rules (the API asks for an admin key).")


class SetState(StateProposal):
    """The body of `POST /api/flow_runs/{id}/set_state`; answered with a TransitionResult."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)  # what a client sends

    # Both conversions copy every field of StateProposal, so neither road can drop one; the
    # values were validated already (by the sender's model, or as the request's body).

    @classmethod
    def of(cls, proposal: StateProposal) -> SetState:
        return cls.model_construct(**{name: getattr(proposal, name) for name in StateProposal.model_fields})

    def for_run(self, flow_run_id: UUID) -> ProposeState:
        return ProposeState.model_construct(
            flow_run_id=flow_run_id, **{name: getattr(self, name) for name in StateProposal.model_fields}
        )


class ProposeState(StateProposal, Envelope):
    """RPC: propose a flow-run transition; answered with a TransitionResult."""

    kind: Literal["propose_state"] = "propose_state"
    flow_run_id: UUID


class CreateFlowRun(Envelope):
    """RPC: create a flow run; answered with the FlowRun."""

    kind: Literal["create_flow_run"] = "create_flow_run"
    run: FlowRunCreate


class TaskRunStateReport(Envelope):
    task_run: TaskRunInfo
    state: State
    version: int = Field(ge=1, description="Monotonic per task run; older reports are history only.")


class TaskRunStates(Envelope):
    """Fire and forget: a batch of task-run states, stored in one transaction."""

    kind: Literal["task_run_states"] = "task_run_states"
    reports: list[TaskRunStateReport] = Field(min_length=1, max_length=5000)


class Logs(Envelope):
    """Fire and forget: a batch of log records."""

    kind: Literal["logs"] = "logs"
    logs: list[LogRecord] = Field(min_length=1, max_length=10000)


class WorkerInfo(Envelope):
    """Who a worker is: sent with its heartbeats, shown by `baton worker ls`."""

    name: Name
    pool_name: Name
    slots: int | None = None
    running: int = 0


class Heartbeat(Envelope):
    """Fire and forget: the sender still owns these runs; extend their leases.

    A worker also sends `worker` so the server knows it is online (three missed heartbeats and
    it shows as offline).
    """

    kind: Literal["heartbeat"] = "heartbeat"
    flow_run_ids: list[UUID] = Field(default_factory=list)
    worker_id: Label | None = None
    worker: WorkerInfo | None = None
    interval_seconds: float = Field(default=10.0, gt=0, description="When to expect the next one.")
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    sent: datetime = Field(default_factory=utcnow)


class HeartbeatReply(BatonModel):
    """The API's answer to `POST /api/flow_runs/heartbeat` (over AMQP: `RpcReply.cancelling`)."""

    extended: int = Field(description="Leases extended: the heartbeat's runs still owned by its sender.")
    cancelling: list[UUID] = Field(
        default_factory=list, description="Runs of this heartbeat that are being cancelled: stop them."
    )


TrackerMessage = Annotated[
    ProposeState | CreateFlowRun | TaskRunStates | Logs | Heartbeat,
    Field(discriminator="kind"),
]


class RpcReply(Envelope):
    """The answer to an RPC on `baton.tracker`: exactly one of the result fields, or an error."""

    ok: bool
    transition: TransitionResult | None = None
    flow_run: FlowRun | None = None
    cancelling: list[UUID] | None = Field(
        default=None, description="To a heartbeat sent as an RPC: those of its runs being cancelled."
    )
    error: str | None = None
    status: int = Field(default=200, description="HTTP-like status: 404 unknown run, 422 bad input.")


class RunKind(StrEnum):
    FLOW_RUN = "flow-run"
    TASK_RUN = "task-run"


class StateChange(Envelope):
    """Published on `baton.states` for every accepted transition.

    Routing key: `{run_kind}.{state type, lower case}.{flow slug}`, e.g.
    `flow-run.failed.etl-daily`. `state_version` increases by one per accepted transition of a
    flow run (task runs: the reporter's version), so a subscriber can order and de-duplicate.
    """

    id: UUID = Field(description="The state's id; also the AMQP message_id.")
    run_kind: RunKind
    run_id: UUID
    run_name: str
    flow_run_id: UUID
    flow_id: UUID
    flow_name: str
    flow_slug: str
    deployment_id: UUID | None = None
    state: State
    previous_type: StateType | None = None
    previous_name: str | None = None
    state_version: int
    tags: list[str] = Field(default_factory=list)
    occurred: datetime


class FlowRunDispatch(Envelope):
    """Published on `baton.runs` with key `{pool}.{queue}` when a deployment run is due.

    It carries everything a worker needs to start the run, so a worker needs only the broker:
    the deployment's entrypoint and pull steps, the run's parameters, and the job variables
    already merged (pool defaults < deployment < run).
    """

    id: UUID = Field(default_factory=uuid4, description="This dispatch; the AMQP message_id.")
    flow_run_id: UUID
    flow_run_name: str
    flow_name: str
    deployment_id: UUID | None = None
    deployment_name: str | None = None
    state_version: int = Field(description="The run's version when dispatched.")
    run_count: int = Field(default=0, description="Attempts that reached Running before this one.")
    tags: list[str] = Field(default_factory=list)
    scheduled_time: datetime
    work_pool_name: str
    work_queue_name: str
    entrypoint: str | None = None
    pull_steps: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    job_template: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(default=None, description="The deployment's; unset: the flow's.")
    log_prints: bool | None = Field(default=None, description="The deployment's; unset: the flow's.")


class ControlKind(StrEnum):
    CANCEL = "cancel"
    PAUSE = "pause"
    SUSPEND = "suspend"  # the run is Suspended: stop its process, report nothing after


class ControlMessage(Envelope):
    """Published on `baton.control` with key `flow-run.{id}` or `worker.{id}`."""

    kind: ControlKind
    flow_run_id: UUID
    reason: str | None = None
    sent: datetime = Field(default_factory=utcnow)


class DeadLetterHeaders:
    """Headers Baton sets on a message it dead-letters to `baton.dead`."""

    REASON = "x-baton-dead-reason"
    ORIGINAL_EXCHANGE = "x-baton-original-exchange"
    ORIGINAL_ROUTING_KEY = "x-baton-original-routing-key"
    ORIGINAL_QUEUE = "x-baton-original-queue"


def message_catalogue() -> dict[str, type[Envelope] | Any]:
    """Every broker message by name: what `baton schemas export` writes a JSON Schema for."""
    from .events import Event

    return {
        "ProposeState": ProposeState,
        "CreateFlowRun": CreateFlowRun,
        "TaskRunStates": TaskRunStates,
        "Logs": Logs,
        "Heartbeat": Heartbeat,
        "RpcReply": RpcReply,
        "StateChange": StateChange,
        "FlowRunDispatch": FlowRunDispatch,
        "ControlMessage": ControlMessage,
        "Event": Event,
    }
