"""The scheduler service: dispatches due deployment runs to their work queues.

A run due at creation is dispatched by the transaction that creates it; this loop dispatches the
rest shortly before their time (and runs sent back to Scheduled by a retry or a full concurrency
limit). Replicas share the scan with SKIP LOCKED. It also declares every work queue's RabbitMQ
queue at start, so a broker that lost its definitions gets them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..broker.topology import declare_pool_queue
from ..context import ServerContext
from .dispatch import dispatch_runs

log = logging.getLogger(__name__)


class SchedulerService:
    name = "scheduler"

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.declare_queues()
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def declare_queues(self) -> None:
        rows = await self._ctx.pool.fetch(
            "SELECT p.name AS pool, q.name AS queue FROM work_queues q JOIN work_pools p ON p.id = q.pool_id"
        )
        for row in rows:
            await declare_pool_queue(self._ctx.broker.channel, row["pool"], row["queue"])

    async def _loop(self) -> None:
        settings = self._ctx.settings
        while True:
            try:
                sent = await self.dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dispatch pass failed: %s", exc)
                sent = 0
            if not sent:
                await asyncio.sleep(settings.dispatch_interval_seconds)

    async def dispatch_due(self) -> int:
        async with self._ctx.pool.acquire() as conn, conn.transaction():
            rows = await dispatch_runs(
                conn, None, within_seconds=self._ctx.settings.dispatch_lookahead_seconds
            )
        self._ctx.outbox.sent_after_commit(rows)
        return len(rows)
