"""How the engine talks to Baton: HTTP to the API (`http.BatonClient`) or AMQP to the tracker
(`amqp.AmqpTracker`). Both satisfy `Transport`, the small async surface the reporter uses.

Nothing here imports httpx or the AMQP client: import the submodule you need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from ._errors import RequestRejected, TransportError, TransportGone, TransportUnavailable

if TYPE_CHECKING:
    from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
    from baton_schemas.runs import FlowRun, FlowRunCreate
    from baton_schemas.states import TransitionResult


class Transport(Protocol):
    """What a run reporter needs from a connection to Baton."""

    async def create_flow_run(self, run: FlowRunCreate) -> FlowRun: ...

    # `traceparent`: the span the request was made in (traces on), carried in the request's
    # headers so that the server's spans of it join the run's trace; None sends no header
    async def propose_state(
        self, proposal: ProposeState, *, traceparent: str | None = None
    ) -> TransitionResult: ...

    async def send(
        self, message: TaskRunStates | Logs | Heartbeat, *, traceparent: str | None = None
    ) -> None: ...

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        """Send a heartbeat; return those of its runs the server is cancelling (empty when
        this transport cannot tell: inside a worker, the worker stops the process itself)."""
        ...

    async def close(self) -> None: ...


__all__ = ["RequestRejected", "Transport", "TransportError", "TransportGone", "TransportUnavailable"]
