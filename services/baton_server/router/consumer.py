"""The router's consumer of `baton.router` (bound `#` on `baton.events`), with group commit.

A message whose routing key no trigger names is acked at once, without being decoded: that is
most events, and what keeps the router's cost per event low. The others are decoded and
admitted as the event store does (a message refused there is the store's to dead-letter; here
it is only acked), matched on their labels, and handed to the applier, which applies the
events that arrive together in one transaction (engine.py). Each message is acked once the
transaction that holds its effects has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from baton import _tracing
from baton._amqp import Delivery, Link
from baton_schemas.topology import ROUTER_QUEUE

from ..broker.consumer import Consumer, DeadLetter
from ..broker.publisher import Publisher
from ..events.admission import Admission
from ..events.ingest import admit_delivery_event
from ..metrics import ROUTER_EVENTS, ROUTER_MATCH_SECONDS, observe_since
from .engine import Matched
from .index import NameIndex

MATCHED = ROUTER_EVENTS.labels("matched")
UNMATCHED = ROUTER_EVENTS.labels("unmatched")
log = logging.getLogger(__name__)

_Waiting = tuple[Matched, "asyncio.Future[None]"]
Apply = Callable[[list[Matched]], Awaitable[None]]
_RETRIES = 3  # a batch that deadlocked with another router's is applied again at once


class Applier:
    """Group commit: the first event of a quiet moment is applied at once; those that arrive
    meanwhile go together in the next transaction (up to `max_batch`)."""

    def __init__(self, apply: Apply, *, max_batch: int, max_statements: int = 2) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._max_statements = max_statements
        self._waiting: deque[_Waiting] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0

    async def submit(self, matched: Matched) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((matched, future))
        if self._running < self._max_statements:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch: list[_Waiting] = []
                while self._waiting and len(batch) < self._max_batch:
                    item = self._waiting.popleft()
                    if not item[1].done():
                        batch.append(item)
                if batch:
                    await self._run(batch)
        finally:
            self._running -= 1

    async def _run(self, batch: list[_Waiting]) -> None:
        self.batches += 1
        for attempt in range(_RETRIES):
            try:
                await self._apply([m for m, _ in batch])
                break
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _RETRIES - 1:
                    self._fail(batch, RuntimeError("deadlocked with another router; redelivering"))
                    return
            except asyncpg.DataError:
                # one event holds a value PostgreSQL refuses: each alone, so only it fails
                for item in batch:
                    await self._alone(item)
                return
            except Exception as exc:
                self._fail(batch, exc)
                return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _alone(self, item: _Waiting) -> None:
        matched, future = item
        try:
            await self._apply([matched])
        except asyncpg.DataError as exc:
            if not future.done():
                future.set_exception(DeadLetter(f"the router cannot apply this event: {exc}"))
            return
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(None)

    @staticmethod
    def _fail(batch: list[_Waiting], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)


class RouterConsumer(Consumer):
    queue_name = ROUTER_QUEUE

    def __init__(
        self,
        link: Link,
        publisher: Publisher,
        index: NameIndex,
        admission: Admission,
        applier: Applier,
        *,
        prefetch: int,
    ) -> None:
        super().__init__(link, publisher, prefetch=prefetch)
        self._index = index
        self._admission = admission
        self._applier = applier
        self.seen = 0
        self.matched = 0

    def _match(self, message: Delivery) -> Matched | None:
        if not self._index.candidates(message.routing_key):
            return None
        try:
            event = admit_delivery_event(message, self._admission)
        except DeadLetter as exc:
            log.debug("ignoring an event the store refuses: %s", exc.reason)
            return None
        fields: dict[str, Any] = event.model_dump(mode="json")
        hits = self._index.hits(fields)
        if not hits:
            return None
        return Matched(fields, event.id, tuple(hits), _tracing.extract(message.headers))

    async def handle(self, message: Delivery) -> None:
        self.seen += 1
        started = time.perf_counter()
        matched = self._match(message)
        observe_since(ROUTER_MATCH_SECONDS, started)
        if matched is None:
            UNMATCHED.inc()
            return
        self.matched += 1
        MATCHED.inc()
        await self._applier.submit(matched)
