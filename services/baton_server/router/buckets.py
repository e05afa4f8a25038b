"""Trigger windows in PostgreSQL (`trigger_buckets`): locked, read, written back, in the
transaction that applies a batch of events.

A window's row is locked before it is read: first an INSERT of an empty row (a no-op if it
exists), so that a window nobody has opened yet has a row to lock, then SELECT ... FOR UPDATE,
both in key order, so two routers touching the same windows wait for each other instead of
deadlocking. Whoever holds the lock counts; the other counts after it on the committed values.

A window that fires is deleted. A router waiting on its lock then finds no row at all: under
READ COMMITTED, FOR UPDATE skips a row its holder deleted. Its events would go uncounted (their
ids are already in `router_events`), so it tries again, inside a savepoint whose rollback
releases the locks it took: the rows are placed anew and locked in key order once more.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from ..db.types import Connection
from .windows import EMPTY, Window

BucketKey = tuple[UUID, str, str]  # automation, trigger path, for_each key

_PLACE = """
    INSERT INTO trigger_buckets (automation_id, trigger_path, bucket_key, proactive, start_at, end_at)
    SELECT a, p, k, pr, 'epoch', 'epoch'
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[]) AS t(a, p, k, pr)
    ORDER BY a, p, k
    ON CONFLICT DO NOTHING"""

_LOCK = """
    SELECT b.* FROM trigger_buckets b
    JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS t(a, p, k)
      ON b.automation_id = t.a AND b.trigger_path = t.p AND b.bucket_key = t.k
    ORDER BY b.automation_id, b.trigger_path, b.bucket_key
    FOR UPDATE OF b"""

_UPDATE = """
    UPDATE trigger_buckets b SET start_at = t.s, end_at = t.e, count = t.c, events = t.ev::jsonb,
        children = t.ch::jsonb, fired = t.f
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
        $6::int[], $7::text[], $8::text[], $9::bool[]) AS t(a, p, k, s, e, c, ev, ch, f)
    WHERE b.automation_id = t.a AND b.trigger_path = t.p AND b.bucket_key = t.k"""

_DELETE = """
    DELETE FROM trigger_buckets b
    USING unnest($1::uuid[], $2::text[], $3::text[]) AS t(a, p, k)
    WHERE b.automation_id = t.a AND b.trigger_path = t.p AND b.bucket_key = t.k"""

# windows past their end and allowance, not taken by another router
_DUE = """
    SELECT * FROM trigger_buckets
    WHERE proactive AND NOT fired AND end_at > 'epoch' AND end_at <= $1
    ORDER BY end_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED"""


def window_of(row: Any) -> Window:
    return Window(
        proactive=row["proactive"],
        start=row["start_at"],
        end=row["end_at"],
        count=row["count"],
        events=row["events"],
        children=row["children"],
        fired=row["fired"],
    )


def _columns(keys: list[BucketKey]) -> tuple[list[UUID], list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]


async def lock(conn: Connection, wanted: dict[BucketKey, bool]) -> dict[BucketKey, Window]:
    """Lock (making empty rows where none exist) and read the windows of `wanted` (key ->
    proactive)."""
    keys = sorted(wanted)
    if not keys:
        return {}
    columns = _columns(keys)
    proactive = [wanted[k] for k in keys]
    while True:
        try:
            async with conn.transaction():  # a savepoint
                await conn.execute(_PLACE, *columns, proactive)
                rows = await conn.fetch(_LOCK, *columns)
                if len(rows) < len(keys):
                    raise _Deleted
        except _Deleted:
            continue  # another router deleted a window while this one waited for it
        return {(r["automation_id"], r["trigger_path"], r["bucket_key"]): window_of(r) for r in rows}


class _Deleted(Exception):
    """A window was deleted by the router that held it while this one waited."""


async def write(conn: Connection, windows: dict[BucketKey, Window]) -> None:
    """Store the windows back: those worth keeping updated, the others deleted."""
    keep = sorted(k for k, w in windows.items() if w.kept)
    drop = sorted(k for k, w in windows.items() if not w.kept)
    if keep:
        values = [windows[k] for k in keep]
        await conn.execute(
            _UPDATE,
            *_columns(keep),
            [w.start for w in values],
            [w.end for w in values],
            [w.count for w in values],
            # as text: a list of lists would be taken for a two-dimensional array
            [orjson.dumps(w.events).decode() for w in values],
            [orjson.dumps(w.children).decode() for w in values],
            [w.fired for w in values],
        )
    if drop:
        await conn.execute(_DELETE, *_columns(drop))


async def due(conn: Connection, before: datetime, limit: int) -> dict[BucketKey, Window]:
    rows = await conn.fetch(_DUE, before, limit)
    return {(r["automation_id"], r["trigger_path"], r["bucket_key"]): window_of(r) for r in rows}


async def open_rolling(conn: Connection, keys: Iterable[tuple[BucketKey, datetime, datetime]]) -> None:
    """Open the first window of proactive triggers with no `after` (each window follows the
    last), unless one exists."""
    items = sorted(keys)
    if not items:
        return
    await conn.execute(
        """INSERT INTO trigger_buckets (automation_id, trigger_path, bucket_key, proactive,
               start_at, end_at)
           SELECT a, p, k, true, s, e
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
               AS t(a, p, k, s, e)
           ON CONFLICT DO NOTHING""",
        [i[0][0] for i in items],
        [i[0][1] for i in items],
        [i[0][2] for i in items],
        [i[1] for i in items],
        [i[2] for i in items],
    )


__all__ = ["EMPTY", "BucketKey", "due", "lock", "open_rolling", "window_of", "write"]


async def forget_early(conn: Connection) -> None:
    """Expected events still waiting for an `after` event that never came (sweep, every few
    minutes): their windows would have been over long ago."""
    await conn.execute("DELETE FROM trigger_buckets WHERE start_at = 'epoch'")
