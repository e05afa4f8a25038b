"""Work pools, their queues, and the workers that serve them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg

from baton_schemas import utcnow
from baton_schemas.envelopes import Heartbeat
from baton_schemas.pools import (
    Worker,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)

from .types import Connection

DEFAULT_QUEUE = "default"
# a worker that missed this many heartbeats is shown offline
MISSED_HEARTBEATS_OFFLINE = 3


class PoolExists(ValueError):
    pass


class NotFound(LookupError):
    pass


def _pool(row: asyncpg.Record) -> WorkPool:
    return WorkPool(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        description=row["description"],
        base_job_template=row["base_job_template"],
        concurrency_limit=row["concurrency_limit"],
        paused=row["paused"],
        late_after_seconds=row["late_after_seconds"],
        created=row["created"],
    )


def _queue(row: asyncpg.Record) -> WorkQueue:
    return WorkQueue(
        id=row["id"],
        pool_name=row["pool_name"],
        name=row["name"],
        priority=row["priority"],
        concurrency_limit=row["concurrency_limit"],
        paused=row["paused"],
        created=row["created"],
    )


async def create_pool(conn: Connection, create: WorkPoolCreate) -> WorkPool:
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO work_pools (id, name, type, description, base_job_template,
                   concurrency_limit, paused, late_after_seconds)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING RETURNING *""",
            uuid.uuid4(),
            create.name,
            create.type,
            create.description,
            create.base_job_template,
            create.concurrency_limit,
            create.paused,
            create.late_after_seconds,
        )
        if row is None:
            raise PoolExists(f"work pool {create.name!r} already exists")
        await conn.execute(
            "INSERT INTO work_queues (id, pool_id, name, priority) VALUES ($1, $2, $3, 1)",
            uuid.uuid4(),
            row["id"],
            DEFAULT_QUEUE,
        )
    return _pool(row)


async def get_pool(conn: Connection, name: str) -> WorkPool:
    row = await conn.fetchrow("SELECT * FROM work_pools WHERE name = $1", name)
    if row is None:
        raise NotFound(f"work pool {name!r} does not exist")
    return _pool(row)


async def list_pools(conn: Connection) -> list[WorkPool]:
    return [_pool(r) for r in await conn.fetch("SELECT * FROM work_pools ORDER BY name")]


async def update_pool(conn: Connection, name: str, update: WorkPoolUpdate) -> WorkPool:
    fields = update.model_dump(exclude_unset=True)
    row = await conn.fetchrow(
        """UPDATE work_pools SET
               description = CASE WHEN $2 THEN $3 ELSE description END,
               base_job_template = CASE WHEN $4 THEN $5::jsonb ELSE base_job_template END,
               concurrency_limit = CASE WHEN $6 THEN $7 ELSE concurrency_limit END,
               paused = CASE WHEN $8 THEN $9 ELSE paused END,
               late_after_seconds = CASE WHEN $10 THEN $11 ELSE late_after_seconds END,
               updated = now()
           WHERE name = $1 RETURNING *""",
        name,
        "description" in fields,
        update.description,
        "base_job_template" in fields,
        update.base_job_template,
        "concurrency_limit" in fields,
        update.concurrency_limit,
        "paused" in fields and update.paused is not None,
        update.paused,
        "late_after_seconds" in fields,
        update.late_after_seconds,
    )
    if row is None:
        raise NotFound(f"work pool {name!r} does not exist")
    return _pool(row)


async def delete_pool(conn: Connection, name: str) -> list[str]:
    """Delete a pool; returns its queue names (their RabbitMQ queues go too)."""
    async with conn.transaction():
        queues = await list_queues(conn, name)
        await conn.execute("DELETE FROM work_pools WHERE name = $1", name)
    return [q.name for q in queues]


_QUEUE_COLUMNS = "q.*, p.name AS pool_name"


async def list_queues(conn: Connection, pool: str) -> list[WorkQueue]:
    await get_pool(conn, pool)
    rows = await conn.fetch(
        f"""SELECT {_QUEUE_COLUMNS} FROM work_queues q JOIN work_pools p ON p.id = q.pool_id
            WHERE p.name = $1 ORDER BY q.priority, q.name""",
        pool,
    )
    return [_queue(r) for r in rows]


async def get_queue(conn: Connection, pool: str, name: str) -> WorkQueue:
    row = await conn.fetchrow(
        f"""SELECT {_QUEUE_COLUMNS} FROM work_queues q JOIN work_pools p ON p.id = q.pool_id
            WHERE p.name = $1 AND q.name = $2""",
        pool,
        name,
    )
    if row is None:
        raise NotFound(f"work queue {name!r} does not exist in pool {pool!r}")
    return _queue(row)


async def create_queue(
    conn: Connection, pool: str, create: WorkQueueCreate, *, exist_ok: bool = False
) -> WorkQueue:
    pool_row = await get_pool(conn, pool)
    row = await conn.fetchrow(
        """INSERT INTO work_queues (id, pool_id, name, priority, concurrency_limit, paused)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pool_id, name) DO NOTHING RETURNING id""",
        uuid.uuid4(),
        pool_row.id,
        create.name,
        create.priority,
        create.concurrency_limit,
        create.paused,
    )
    if row is None and not exist_ok:
        raise PoolExists(f"work queue {create.name!r} already exists in pool {pool!r}")
    return await get_queue(conn, pool, create.name)


async def update_queue(conn: Connection, pool: str, name: str, update: WorkQueueUpdate) -> WorkQueue:
    queue = await get_queue(conn, pool, name)
    fields = update.model_dump(exclude_unset=True)
    await conn.execute(
        """UPDATE work_queues SET
               priority = COALESCE($2, priority),
               concurrency_limit = CASE WHEN $3 THEN $4 ELSE concurrency_limit END,
               paused = COALESCE($5, paused)
           WHERE id = $1""",
        queue.id,
        update.priority,
        "concurrency_limit" in fields,
        update.concurrency_limit,
        update.paused,
    )
    return await get_queue(conn, pool, name)


async def delete_queue(conn: Connection, pool: str, name: str) -> None:
    queue = await get_queue(conn, pool, name)
    await conn.execute("DELETE FROM work_queues WHERE id = $1", queue.id)


async def record_worker(conn: Connection, heartbeat: Heartbeat) -> None:
    if heartbeat.worker is None or heartbeat.worker_id is None:
        return
    info = heartbeat.worker
    await conn.execute(
        """INSERT INTO workers (id, name, pool_name, slots, running, heartbeat_seconds, last_heartbeat)
           VALUES ($1, $2, $3, $4, $5, $6, now())
           ON CONFLICT (id) DO UPDATE SET
               name = EXCLUDED.name, pool_name = EXCLUDED.pool_name, slots = EXCLUDED.slots,
               running = EXCLUDED.running, heartbeat_seconds = EXCLUDED.heartbeat_seconds,
               last_heartbeat = now()""",
        heartbeat.worker_id,
        info.name,
        info.pool_name,
        info.slots,
        info.running,
        heartbeat.interval_seconds,
    )


async def list_workers(conn: Connection, pool: str | None = None) -> list[Worker]:
    rows = await conn.fetch(
        """SELECT * FROM workers WHERE $1::text IS NULL OR pool_name = $1
           ORDER BY pool_name, last_heartbeat DESC""",
        pool,
    )
    now = utcnow()
    return [
        Worker(
            id=r["id"],
            name=r["name"],
            pool_name=r["pool_name"],
            last_heartbeat=r["last_heartbeat"],
            online=now - r["last_heartbeat"]
            <= timedelta(seconds=r["heartbeat_seconds"] * MISSED_HEARTBEATS_OFFLINE),
            slots=r["slots"],
            running=r["running"],
        )
        for r in rows
    ]
