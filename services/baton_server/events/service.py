"""The events service: stores what arrives on `baton.events`, keeps the store's partitions.

- The consumer of `baton.event-store` (ingest.py) stores events in group-committed batches.
- A maintenance loop makes the partitions of today and the days ahead, drops those past the
  retention, and marks workers that missed three heartbeats as stopped (their
  `baton.worker.stopped` event is written by the database trigger, through the outbox).

Any number of replicas may run: inserts are idempotent, partition changes take an advisory lock,
and marking a worker stopped is one conditional UPDATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from baton_schemas import utcnow

from ..context import ServerContext
from .admission import Admission, trusted_users
from .ingest import EventStoreConsumer
from .partitions import Partitions, apply_retention, days_ahead

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600.0

_MARK_STOPPED = """
    UPDATE workers SET stopped_at = now()
    WHERE stopped_at IS NULL
      AND last_heartbeat < now() - make_interval(secs => heartbeat_seconds * $1)"""
MISSED_HEARTBEATS_STOPPED = 3


def admission_for(ctx: ServerContext) -> Admission:
    settings = ctx.settings
    return Admission(
        trusted_users(settings.broker_url, settings.events_trusted_users), settings.events_retention_days
    )


class EventsService:
    name = "events"

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self.partitions = Partitions()
        self.consumer = EventStoreConsumer(
            ctx.link,
            ctx.publisher,
            ctx.pool,
            admission_for(ctx),
            prefetch=settings.events_prefetch,
            max_batch=settings.events_batch_size,
            partitions=self.partitions,
        )
        self.writer = self.consumer.writer
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.maintain()
        await self.consumer.start()
        self._tasks = [
            asyncio.create_task(
                self._every(RETENTION_INTERVAL_SECONDS, self.maintain), name="event-retention"
            ),
            asyncio.create_task(
                self._every(self._ctx.settings.worker_stopped_check_seconds, self.mark_stopped_workers),
                name="workers-stopped",
            ),
        ]

    async def stop(self) -> None:
        await self.consumer.stop(grace=self._ctx.settings.shutdown_grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def maintain(self) -> None:
        """Partitions for today and tomorrow; retention applied."""
        now = utcnow()
        async with self._ctx.pool.acquire() as conn:
            await self.partitions.ensure(conn, days_ahead(now))
            await apply_retention(conn, now, self._ctx.settings.events_retention_days)

    async def mark_stopped_workers(self) -> None:
        await self._ctx.pool.execute(_MARK_STOPPED, float(MISSED_HEARTBEATS_STOPPED))

    @staticmethod
    async def _every(seconds: float, job: object) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()  # type: ignore[operator]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("events maintenance failed (%s); will retry", exc)
