"""Group commit for the event store: every event waits for the statement that stores it.

The first event of a quiet moment is stored at once; the ones that arrive while a statement
runs go together in the next (up to `max_batch`), so the store's cost per event falls as load
rises and an idle store answers as fast as one INSERT. Each caller learns when its own event is
committed, so the consumer acks only then. A batch that PostgreSQL refuses for one bad value (a
NUL character in a JSON string, say) is stored again event by event, and only the bad event's
caller gets the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import asyncpg

from .partitions import Partitions
from .store import EventRow, store_events

log = logging.getLogger(__name__)


class Unstorable(Exception):
    """PostgreSQL refuses this event's values; storing it again will not help."""


_WaitingEvent = tuple[EventRow, "asyncio.Future[None]"]


class EventWriter:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        max_batch: int = 1000,
        max_statements: int = 2,
        partitions: Partitions | None = None,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._max_statements = max_statements
        self.partitions = partitions or Partitions()
        self._waiting: deque[_WaitingEvent] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements = 0
        self.stored = 0

    async def store(self, row: EventRow) -> None:
        """Return once `row` is committed (or was stored before). Unstorable for a bad value."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._running < self._max_statements:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch: list[_WaitingEvent] = []
                while self._waiting and len(batch) < self._max_batch:
                    row, future = self._waiting.popleft()
                    if not future.done():  # its caller was cancelled
                        batch.append((row, future))
                if batch:
                    await self._write(batch)
        finally:
            self._running -= 1

    async def _write(self, batch: list[_WaitingEvent]) -> None:
        self.statements += 1
        try:
            async with self._pool.acquire() as conn:
                self.stored += await store_events(conn, [row for row, _ in batch], self.partitions)
        except asyncpg.DataError:
            # one of them carries a value PostgreSQL refuses: each alone, so only it fails
            for row, future in batch:
                await self._write_alone(row, future)
            return
        except asyncpg.CheckViolationError:
            self.partitions.forget()  # a partition went away under us (retention): look again
            self._fail(batch, RuntimeError("no partition for an event's day; retrying"))
            return
        except Exception as exc:
            self._fail(batch, exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _write_alone(self, row: EventRow, future: asyncio.Future[None]) -> None:
        try:
            async with self._pool.acquire() as conn:
                self.stored += await store_events(conn, [row], self.partitions)
        except asyncpg.DataError as exc:
            if not future.done():
                future.set_exception(Unstorable(f"PostgreSQL refused the event: {exc}"))
            return
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(None)

    @staticmethod
    def _fail(batch: list[_WaitingEvent], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
