"""Group commit for the event store: events are stored in batches, each settled once committed.

The first event of a quiet moment is stored at once; the ones that arrive while a statement
runs go together in the next (up to `max_batch`), so the store's cost per event falls as load
rises and an idle store answers as fast as one INSERT. There is no flush timer: nothing waits
for a batch to fill.

Each event comes with a token (the consumer's delivery) and the writer tells its `Settle` what
became of it: `stored` for a whole committed batch at once (so the consumer can ack them with
one multiple ack), `failed` for one that was not. A batch that PostgreSQL refuses for one bad
value (a NUL character in a JSON string, say) is stored again event by event, and only the bad
event fails, with `Unstorable`. While the database is away a batch is retried with capped,
jittered backoff and its events stay unsettled (held, not requeued): the consumer pauses.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from ..db.outage import database_down
from .partitions import Partitions
from .store import EventRow, store_events

log = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Unstorable(Exception):
    """PostgreSQL refuses this event's values; storing it again will not help."""


class Settle(Protocol[T_contra]):
    def stored(self, tokens: Sequence[T_contra]) -> None:
        """These events are committed (or were stored before)."""

    def failed(self, token: T_contra, exc: BaseException) -> None:
        """This event was not stored: Unstorable, or another error (try it again later)."""


class EventWriter(Generic[T]):
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        settle: Settle[T],
        *,
        max_batch: int = 1000,
        max_statements: int = 2,
        partitions: Partitions | None = None,
        pause_backoff_max: float = 5.0,
    ) -> None:
        self._pool = pool
        self._settle = settle
        self._max_batch = max_batch
        self._max_statements = max_statements
        self._pause_backoff_max = pause_backoff_max
        self.partitions = partitions or Partitions()
        self._waiting: deque[tuple[EventRow, T]] = deque()
        self._running = 0
        self._in_statements = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements = 0
        self.stored = 0

    @property
    def pending(self) -> int:
        """Events submitted and not settled yet (waiting, or in a statement)."""
        return len(self._waiting) + self._in_statements

    def submit(self, row: EventRow, token: T) -> None:
        """Store `row`; `token` is settled once it is committed (or has failed)."""
        self._waiting.append((row, token))
        if self._running < self._max_statements:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            waiting = self._waiting
            while waiting:
                count = min(len(waiting), self._max_batch)
                batch = [waiting.popleft() for _ in range(count)]
                self._in_statements += count
                try:
                    await self._write(batch)
                finally:
                    self._in_statements -= count
        finally:
            self._running -= 1

    async def _write(self, batch: list[tuple[EventRow, T]]) -> None:
        rows = [row for row, _ in batch]
        attempt = 0
        while True:
            self.statements += 1
            try:
                async with self._pool.acquire() as conn:
                    self.stored += await store_events(conn, rows, self.partitions)
            except asyncpg.DataError:
                # one of them carries a value PostgreSQL refuses: each alone, so only it fails
                for row, token in batch:
                    await self._write_alone(row, token)
                return
            except asyncpg.CheckViolationError:
                self.partitions.forget()  # a partition went away under us (retention): look again
                self._fail(batch, RuntimeError("no partition for an event's day; retrying"))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not database_down(exc):
                    self._fail(batch, exc)
                    return
                attempt += 1
                if attempt == 1:
                    log.warning("event store: paused, the database is away (%r); retrying", exc)
                # capped, jittered exponential backoff; the events stay held meanwhile
                await asyncio.sleep(random.uniform(0, min(self._pause_backoff_max, 0.5 * 2**attempt)))
                continue
            if attempt:
                log.warning("event store: the database is back; storing again")
            self._settle.stored([token for _, token in batch])
            return

    async def _write_alone(self, row: EventRow, token: T) -> None:
        try:
            async with self._pool.acquire() as conn:
                self.stored += await store_events(conn, [row], self.partitions)
        except asyncpg.DataError as exc:
            self._settle.failed(token, Unstorable(f"PostgreSQL refused the event: {exc}"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._settle.failed(token, exc)
        else:
            self._settle.stored([token])

    def _fail(self, batch: list[tuple[EventRow, T]], exc: BaseException) -> None:
        for _, token in batch:
            self._settle.failed(token, exc)

    async def close(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` for what was submitted to be settled, then stop trying: what is
        left unsettled stays unacknowledged, and the broker delivers it again."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self._waiting.clear()
