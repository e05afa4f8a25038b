"""The relay between a run's process and its worker passes a report's traceparent on to the
worker's tracker client, and sends none when it was given none (traces off)."""

from __future__ import annotations

import asyncio
import socket
from uuid import uuid4

from baton._worker._relay import RelayTransport, serve_relay
from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
from baton_schemas.logs import LogRecord
from baton_schemas.states import Running, TransitionResult, Verdict

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Tracker:
    """Stands in for the worker's `AmqpTracker`: records what it is asked to send, and how."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def propose_state(
        self, proposal: ProposeState, *, traceparent: str | None = None
    ) -> TransitionResult:
        self.calls.append((proposal.kind, traceparent))
        return TransitionResult(verdict=Verdict.ACCEPT, state=proposal.state)

    async def send(
        self, message: TaskRunStates | Logs | Heartbeat, *, traceparent: str | None = None
    ) -> None:
        self.calls.append((message.kind, traceparent))


async def test_the_relay_passes_each_reports_traceparent_on_and_adds_none() -> None:
    ours, theirs = socket.socketpair()
    tracker = Tracker()
    serving = asyncio.create_task(serve_relay(ours, tracker, "test"))  # type: ignore[arg-type]
    reader, writer = await asyncio.open_unix_connection(sock=theirs)
    relay = RelayTransport(reader, writer, timeout=5)
    try:
        run_id = uuid4()
        await relay.propose_state(ProposeState(flow_run_id=run_id, state=Running()), traceparent=TRACEPARENT)
        await relay.propose_state(ProposeState(flow_run_id=run_id, state=Running()))
        await relay.send(Logs(logs=[LogRecord(message="traced")]), traceparent=TRACEPARENT)
        await relay.send(Logs(logs=[LogRecord(message="untraced")]))
    finally:
        await relay.close()
        await asyncio.wait_for(serving, 5)
    assert tracker.calls == [
        ("propose_state", TRACEPARENT),
        ("propose_state", None),
        ("logs", TRACEPARENT),
        ("logs", None),
    ]
