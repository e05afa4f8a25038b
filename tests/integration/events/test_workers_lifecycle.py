"""A worker starts with its first heartbeat, stops when it misses three, starts again with the
next: each is an event, written by the database in the heartbeat's (or the check's) transaction."""

from __future__ import annotations

import uuid

from baton_schemas.envelopes import Heartbeat, WorkerInfo
from baton_server.context import ServerContext
from baton_server.db.pools import record_worker
from baton_server.events.service import EventsService

from ...support.waiting import eventually


async def _names(ctx: ServerContext, worker_id: str) -> list[str]:
    rows = await ctx.pool.fetch(
        "SELECT event FROM events WHERE resource_id = $1 ORDER BY occurred", f"baton.worker.{worker_id}"
    )
    return [r["event"] for r in rows]


async def test_worker_started_stopped_started(ctx: ServerContext, events_service: EventsService) -> None:
    worker_id = f"w-{uuid.uuid4().hex[:8]}"
    beat = Heartbeat(worker_id=worker_id, worker=WorkerInfo(name="w1", pool_name="p"), interval_seconds=0.05)
    async with ctx.pool.acquire() as conn:
        await record_worker(conn, beat)
        await record_worker(conn, beat)  # a second heartbeat starts nothing
        await conn.execute(
            "UPDATE workers SET last_heartbeat = now() - interval '1 minute' WHERE id = $1", worker_id
        )
    await events_service.mark_stopped_workers()
    await events_service.mark_stopped_workers()  # stopped once
    async with ctx.pool.acquire() as conn:
        await record_worker(conn, beat)

    async def three() -> list[str] | None:
        names = await _names(ctx, worker_id)
        return names if len(names) >= 3 else None

    names = await eventually(three, timeout=15, what="the worker's events")
    assert names == ["baton.worker.started", "baton.worker.stopped", "baton.worker.started"]
    row = await ctx.pool.fetchrow(
        "SELECT related FROM events WHERE resource_id = $1 LIMIT 1", f"baton.worker.{worker_id}"
    )
    assert row is not None
    assert row["related"][0]["baton.resource.id"] == "baton.work-pool.p"
