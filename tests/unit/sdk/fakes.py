"""A `Transport` test double: an in-memory Baton that can be taken down and brought back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from baton._transport import RequestRejected, TransportUnavailable
from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import Pending, TransitionResult, Verdict


class FakeBaton:
    """Accepts every proposal while `up`; raises `TransportUnavailable` while down. With
    `hold_connect`, connecting blocks until `up` (a server that is not there yet)."""

    def __init__(self, up: bool = True, hold_connect: bool = False) -> None:
        self._up = threading.Event()
        if up:
            self._up.set()
        self.hold_connect = hold_connect
        self.refuse: dict[str, int] = {}  # method name -> HTTP-like status to refuse it with
        self.received: list[Any] = []  # everything delivered, in order
        self.connects = 0
        self.closed = False
        self.cancelling: set[UUID] = set()  # runs the "server" is cancelling
        self.traceparents: list[str | None] = []  # each proposal's and batch's, in order
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def set_up(self, up: bool) -> None:
        if up:
            self._up.set()
        else:
            self._up.clear()

    def of_type(self, kind: type) -> list[Any]:
        with self._lock:
            return [item for item in self.received if isinstance(item, kind)]

    async def connect(self) -> FakeBaton:
        self.connects += 1
        if self.hold_connect:
            while not self.up:
                await asyncio.sleep(0.005)
        elif not self.up:
            raise TransportUnavailable("fake server is down")
        return self

    def _check(self, method: str) -> None:
        if not self.up:
            raise TransportUnavailable("fake server is down")
        if method in self.refuse:
            raise RequestRejected(self.refuse[method], f"{method} refused")

    def _record(self, item: Any) -> None:
        with self._lock:
            self.received.append(item)

    async def create_flow_run(self, run: FlowRunCreate) -> FlowRun:
        self._check("create_flow_run")
        self._record(run)
        now = datetime.now(UTC)
        return FlowRun(
            id=run.id or uuid4(),
            name=run.name or "fake",
            flow_id=uuid4(),
            flow_name=run.flow_name or "fake",
            state=run.state or Pending(),
            state_version=1,
            created=now,
            updated=now,
        )

    async def propose_state(
        self, proposal: ProposeState, *, traceparent: str | None = None
    ) -> TransitionResult:
        self._check("propose_state")
        self.traceparents.append(traceparent)
        self._record(proposal)
        return TransitionResult(verdict=Verdict.ACCEPT, state=proposal.state)

    async def send(
        self, message: TaskRunStates | Logs | Heartbeat, *, traceparent: str | None = None
    ) -> None:
        self._check("send")
        self.traceparents.append(traceparent)
        self._record(message)

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        await self.send(message)
        return sorted(self.cancelling & set(message.flow_run_ids))

    async def close(self) -> None:
        self.closed = True


def eventually(probe: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll `probe` until truthy; fail after `timeout` seconds (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(0.005)
