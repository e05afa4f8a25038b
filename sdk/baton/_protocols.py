"""The protocols the engine's parts meet each other by, in a module of their own so that the
engine, the reporters and the test doubles all depend on it and not on each other.

- `Reporter`: where the engine reports runs (`baton._reporting` has the real ones).

The engine calls a reporter from any thread and never waits on it for task-run states or logs.
Flow-run creation and proposals return futures; `None` as their result means "no orchestrator
answered: decide locally" (no server, or the server stayed away past the outage grace period).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from baton_schemas.envelopes import ProposeState
    from baton_schemas.runs import FlowRun, FlowRunCreate
    from baton_schemas.states import State, TransitionResult

    from ._records import TaskRunRecord


class Reporter(Protocol):
    """Receives everything the engine reports about runs. Methods are safe from any thread."""

    #: Whether run log records should be handed to `emit_log` (the console shows them anyway).
    ships_logs: bool

    def create_flow_run(self, run: FlowRunCreate) -> Future[FlowRun | None]: ...

    def propose_state(self, proposal: ProposeState) -> Future[TransitionResult | None]: ...

    def report_task_run_state(self, task_run: TaskRunRecord, state: State, version: int) -> None:
        """Fire and forget. `task_run` may change later; read it when the report is sent."""

    def emit_log(
        self,
        flow_run_id: UUID,
        task_run_id: UUID | None,
        name: str,
        level: int,
        message: str,
        created: float,
    ) -> None:
        """Fire and forget."""

    def track_flow_run(self, flow_run_id: UUID) -> None:
        """The run started here: heartbeat for it until `untrack_flow_run`."""

    def untrack_flow_run(self, flow_run_id: UUID) -> None: ...

    def cancel_requested(self, flow_run_id: UUID) -> bool:
        """Has the server asked for this run to be cancelled? (Learnt from heartbeat answers;
        the engine then starts no more task runs and the run ends Cancelled.)"""
        ...

    def flush(self, timeout: float) -> Future[bool]:
        """Start delivering what is buffered; the future says (within `timeout`) whether
        nothing is left. The engine waits on it before proposing a terminal flow-run state, so
        the server has a run's task states before the run ends."""

    def close(self, timeout: float) -> None:
        """Deliver what is buffered (for at most `timeout` seconds) and release resources."""
