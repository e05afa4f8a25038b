"""Requests waiting for concurrency slots, woken when slots are freed instead of polling.

One `SlotWaiters` per API process. While any request waits, it LISTENs on `baton_concurrency`
(`baton_server.db.concurrency`): a release of `n` slots of a limit wakes the `n` requests that
have waited longest for that limit in this process (every API replica hears the notification,
and each wakes its own). A woken request tries again; one that finds the limit full again goes
back to waiting. A change to the limit itself (update, reset, delete) wakes all of its waiters.

Notifications are wake-ups, not truth: each wait also ends at the time the database said room
comes at the latest (a lease expiring, a rate limit draining), and after `recheck_seconds` at
most, so a lost notification or a lost LISTEN connection only delays a waiter.

The same object sweeps expired leases now and then (`sweep_seconds`); their slots are already
free, the sweep only keeps the table small and wakes those who wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

import asyncpg

from ..db import concurrency as db

log = logging.getLogger(__name__)


class SlotWaiters:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        *,
        recheck_seconds: float = 5.0,
        sweep_seconds: float = 30.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self.recheck_seconds = recheck_seconds
        self._sweep_seconds = sweep_seconds
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._listener: asyncpg.Connection[Any] | None = None
        self._starting = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="concurrency-lease-sweep")

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, names: Iterable[str], timeout: float) -> None:
        """Until slots of one of `names` may have come free, or `timeout` seconds."""
        await self._listen()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            self._queues.setdefault(name, deque()).append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), min(timeout, self.recheck_seconds))
        finally:
            for name in wanted:
                queue = self._queues.get(name)
                if queue is not None:
                    with contextlib.suppress(ValueError):
                        queue.remove(waiter)
                    if not queue:
                        del self._queues[name]

    def wake(self, name: str, slots: int | None = None) -> None:
        """Wake `slots` waiters of `name` (all of them when None), the longest waiting first."""
        queue = self._queues.get(name)
        if not queue:
            return
        woken = 0
        for waiter in list(queue):
            if slots is not None and woken >= slots:
                break
            if not waiter.done():
                waiter.set_result(None)
                woken += 1

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        slots, _, name = str(payload).partition(":")
        self.wake(name, None if slots == db.ALL else int(slots) if slots.isdigit() else None)

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._starting:
            if self._closed or (self._listener is not None and not self._listener.is_closed()):
                return
            try:
                listener = await asyncpg.connect(self._dsn)
                await listener.add_listener(db.CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("concurrency waits cannot LISTEN (%s): they recheck on a timer", exc)
                return
            listener.add_termination_listener(self._lost)
            self._listener = listener

    def _lost(self, _conn: Any) -> None:
        log.warning("concurrency waits lost their LISTEN connection; it is opened again on the next wait")
        self._listener = None
        for queue in self._queues.values():  # nobody sleeps on a channel that went quiet
            for waiter in queue:
                if not waiter.done():
                    waiter.set_result(None)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                async with self._pool.acquire() as conn:
                    await db.sweep_expired(conn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("sweeping expired concurrency leases failed: %s", exc)
