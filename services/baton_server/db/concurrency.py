"""Global concurrency limits: their rows, the leases on their slots, and taking slots.

Correctness: taking slots locks the rows of the limits asked for (`FOR NO KEY UPDATE`, in the
order of their ids, so takers of overlapping sets never deadlock), then counts the live leases
in a *second* statement. A READ COMMITTED statement reads as of its own start: counting in the
statement that waited for the lock could miss a lease the previous holder of the lock had just
committed. Renewing a lease takes the same rows `FOR SHARE` first, so a renewal and a taker
never disagree on whether a lease was still live: both judge by `clock_timestamp()` after
their locks, never by the transaction's start time.

Every change that frees slots sends `NOTIFY baton_concurrency, '{slots}:{name}'` ('*' for all
of them) so the API's waiting requests wake up (`baton_server.api.concurrency`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from baton_schemas.concurrency import (
    AcquireSlots,
    ConcurrencyHolder,
    ConcurrencyLease,
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    ConcurrencyLimitUpdate,
)

from .types import Connection

CHANNEL = "baton_concurrency"
ALL = "*"


class LimitExists(ValueError):
    pass


class NotFound(LookupError):
    pass


class Unacquirable(ValueError):
    """A request that could never be granted as asked (422)."""


_HELD = """
    SELECT lim.id, coalesce(h.held, 0)::int AS held, h.next_expiry, now.t AS now
    FROM unnest($1::uuid[]) AS lim(id)
    CROSS JOIN (SELECT clock_timestamp() AS t) AS now
    LEFT JOIN LATERAL (
        SELECT sum(l.slots) AS held, min(l.expires) AS next_expiry
        FROM concurrency_lease_limits ll JOIN concurrency_leases l ON l.id = ll.lease_id
        WHERE ll.limit_id = lim.id AND l.expires > now.t
    ) AS h ON true"""


def _decayed(row: asyncpg.Record | dict[str, Any], now: datetime) -> float:
    """A rate limit's slots still occupied at `now`."""
    decay = float(row["slot_decay_per_second"])
    slots = float(row["decaying_slots"])
    if decay <= 0 or slots <= 0:
        return max(slots, 0.0)
    elapsed: float = (now - row["decayed_at"]).total_seconds()
    return max(0.0, slots - decay * elapsed)


def _limit(
    row: asyncpg.Record, held: int, now: datetime, leases: list[ConcurrencyLease] | None = None
) -> ConcurrencyLimit:
    return ConcurrencyLimit(
        id=row["id"],
        name=row["name"],
        limit=row["limit"],
        active=row["active"],
        slot_decay_per_second=row["slot_decay_per_second"],
        active_slots=held + math.ceil(_decayed(row, now) - 1e-9),
        held_slots=held,
        denied_slots=row["denied_slots"],
        created=row["created"],
        updated=row["updated"],
        leases=leases,
    )


async def _with_held(conn: Connection, rows: Sequence[asyncpg.Record]) -> list[ConcurrencyLimit]:
    counts = await conn.fetch(_HELD, [row["id"] for row in rows])
    by_id = {c["id"]: c for c in counts}
    now = counts[0]["now"] if counts else None
    return [_limit(row, by_id[row["id"]]["held"], now) for row in rows]  # type: ignore[arg-type]


async def create_limit(conn: Connection, body: ConcurrencyLimitCreate) -> ConcurrencyLimit:
    row = await conn.fetchrow(
        """INSERT INTO concurrency_limits (id, name, "limit", slot_decay_per_second, active)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING *""",
        uuid.uuid4(),
        body.name,
        body.limit,
        body.slot_decay_per_second,
        body.active,
    )
    if row is None:
        raise LimitExists(f"concurrency limit {body.name!r} already exists")
    return (await _with_held(conn, [row]))[0]


async def list_limits(conn: Connection) -> list[ConcurrencyLimit]:
    rows = await conn.fetch("SELECT * FROM concurrency_limits ORDER BY name")
    return await _with_held(conn, rows) if rows else []


async def _row(conn: Connection, name: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow("SELECT * FROM concurrency_limits WHERE name = $1", name)
    if row is None:
        raise NotFound(f"no concurrency limit named {name!r}")
    return row


async def get_limit(conn: Connection, name: str) -> ConcurrencyLimit:
    """The limit with its live leases."""
    row = await _row(conn, name)
    leases = await conn.fetch(
        """SELECT l.* FROM concurrency_lease_limits ll JOIN concurrency_leases l ON l.id = ll.lease_id
           WHERE ll.limit_id = $1 AND l.expires > clock_timestamp() ORDER BY l.created""",
        row["id"],
    )
    found = (await _with_held(conn, [row]))[0]
    found.leases = [
        ConcurrencyLease(
            id=lease["id"],
            slots=lease["slots"],
            expires=lease["expires"],
            holder=ConcurrencyHolder.model_validate(lease["holder"]) if lease["holder"] else None,
            created=lease["created"],
        )
        for lease in leases
    ]
    return found


async def _notify(conn: Connection, name: str, slots: int | str = ALL) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{slots}:{name}")


async def update_limit(conn: Connection, name: str, body: ConcurrencyLimitUpdate) -> ConcurrencyLimit:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE concurrency_limits SET
                   "limit" = coalesce($2, "limit"),
                   slot_decay_per_second = coalesce($3, slot_decay_per_second),
                   active = coalesce($4, active),
                   updated = now()
               WHERE name = $1 RETURNING *""",
            name,
            changes.get("limit"),
            changes.get("slot_decay_per_second"),
            changes.get("active"),
        )
        if row is None:
            raise NotFound(f"no concurrency limit named {name!r}")
        await _notify(conn, name)  # a larger limit, or an inactive one, lets waiters through
    return (await _with_held(conn, [row]))[0]


async def delete_limit(conn: Connection, name: str) -> None:
    async with conn.transaction():
        deleted = await conn.fetchval("DELETE FROM concurrency_limits WHERE name = $1 RETURNING id", name)
        if deleted is None:
            raise NotFound(f"no concurrency limit named {name!r}")
        # leases of this limit alone hold nothing any more
        await conn.execute(
            """DELETE FROM concurrency_leases l WHERE NOT EXISTS
                   (SELECT 1 FROM concurrency_lease_limits ll WHERE ll.lease_id = l.id)"""
        )
        await _notify(conn, name)


async def reset_limit(conn: Connection, name: str) -> ConcurrencyLimit:
    """Free every slot: the limit's leases end (their holders learn it when they renew)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE concurrency_limits SET decaying_slots = 0, decayed_at = now(), updated = now()
               WHERE name = $1 RETURNING *""",
            name,
        )
        if row is None:
            raise NotFound(f"no concurrency limit named {name!r}")
        await conn.execute(
            """DELETE FROM concurrency_leases WHERE id IN
                   (SELECT lease_id FROM concurrency_lease_limits WHERE limit_id = $1)""",
            row["id"],
        )
        await _notify(conn, name)
    return (await _with_held(conn, [row]))[0]


@dataclass(slots=True)
class Attempt:
    """One try at taking slots."""

    acquired: bool
    lease_id: uuid.UUID | None = None
    expires: datetime | None = None
    limits: list[str] = field(default_factory=list)  # the active limits asked for
    missing: list[str] = field(default_factory=list)  # names asked for that have no limit
    full: list[str] = field(default_factory=list)  # those without room
    retry_after: float | None = None  # when room is known to come at the latest, if it is


def _check(request: AcquireSlots, rows: Sequence[asyncpg.Record]) -> list[str]:
    """The names with no limit (an error if the request is strict)."""
    missing = sorted(set(request.names) - {row["name"] for row in rows})
    if missing and request.strict:
        raise NotFound(f"no concurrency limit named {', '.join(map(repr, missing))}")
    for row in rows:
        if not row["active"]:
            continue
        if request.slots > row["limit"]:
            raise Unacquirable(
                f"asks for {request.slots} slot(s) of {row['name']!r}, which has only {row['limit']}"
            )
        if request.mode == "rate_limit" and row["slot_decay_per_second"] <= 0:
            raise Unacquirable(
                f"{row['name']!r} is not a rate limit: give it a slot decay "
                "(`baton concurrency-limit update NAME --slot-decay-per-second R`)"
            )
    return missing


async def try_acquire(conn: Connection, request: AcquireSlots, *, count_denied: bool = True) -> Attempt:
    """Take the slots if every active limit named has room; else take nothing."""
    async with conn.transaction():
        rows = await conn.fetch(
            """SELECT * FROM concurrency_limits WHERE name = ANY($1::text[])
               ORDER BY id FOR NO KEY UPDATE""",
            request.names,
        )
        missing = _check(request, rows)
        active = [row for row in rows if row["active"]]
        if not active:
            return Attempt(acquired=True, missing=missing)
        counts = {c["id"]: c for c in await conn.fetch(_HELD, [row["id"] for row in active])}
        now: datetime = next(iter(counts.values()))["now"]
        full, waits = [], []
        for row in active:
            count = counts[row["id"]]
            decayed = _decayed(row, now)
            over = count["held"] + decayed + request.slots - row["limit"]
            if over <= 1e-9:
                continue
            full.append(row)
            if row["slot_decay_per_second"] > 0 and over <= decayed + 1e-9:
                waits.append(over / row["slot_decay_per_second"])  # drained by then
            elif count["next_expiry"] is not None:
                waits.append(max((count["next_expiry"] - now).total_seconds(), 0.0))
        names = [row["name"] for row in active]
        if full:
            if count_denied:
                await conn.execute(
                    """UPDATE concurrency_limits SET denied_slots = denied_slots + $2
                       WHERE id = ANY($1::uuid[])""",
                    [row["id"] for row in full],
                    request.slots,
                )
            return Attempt(
                acquired=False,
                limits=names,
                full=[row["name"] for row in full],
                retry_after=max(waits) if len(waits) == len(full) else None,
            )
        ids = [row["id"] for row in active]
        if request.mode == "rate_limit":  # slots that drain away: nothing to release
            for row in active:
                await conn.execute(
                    "UPDATE concurrency_limits SET decaying_slots = $2, decayed_at = $3 WHERE id = $1",
                    row["id"],
                    _decayed(row, now) + request.slots,
                    now,
                )
            return Attempt(acquired=True, limits=names, missing=missing)
        lease_id = uuid.uuid4()
        holder = request.holder.model_dump(mode="json") if request.holder is not None else None
        expires = await conn.fetchval(
            """WITH lease AS (
                   INSERT INTO concurrency_leases (id, slots, expires, holder)
                   VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), $4) RETURNING expires)
               , links AS (
                   INSERT INTO concurrency_lease_limits (limit_id, lease_id)
                   SELECT unnest($5::uuid[]), $1)
               SELECT expires FROM lease""",
            lease_id,
            request.slots,
            request.lease_seconds,
            orjson.Fragment(orjson.dumps(holder)) if holder is not None else None,
            ids,
        )
        return Attempt(acquired=True, lease_id=lease_id, expires=expires, limits=names, missing=missing)


async def renew_lease(conn: Connection, lease_id: uuid.UUID, lease_seconds: float) -> datetime | None:
    """Push a live lease's expiry forward; None if it has expired or was released (its slots
    may be someone else's now)."""
    async with conn.transaction():
        await conn.execute(
            """SELECT 1 FROM concurrency_limits WHERE id IN
                   (SELECT limit_id FROM concurrency_lease_limits WHERE lease_id = $1)
               ORDER BY id FOR SHARE""",
            lease_id,
        )
        expires: datetime | None = await conn.fetchval(
            """UPDATE concurrency_leases SET expires = clock_timestamp() + make_interval(secs => $2)
               WHERE id = $1 AND expires > clock_timestamp() RETURNING expires""",
            lease_id,
            lease_seconds,
        )
        return expires


_RELEASE = f"""
    WITH gone AS (DELETE FROM concurrency_leases WHERE id = ANY($1::uuid[]) RETURNING id, slots, expires)
    SELECT pg_notify('{CHANNEL}', g.slots || ':' || c.name)
    FROM gone g
    JOIN concurrency_lease_limits ll ON ll.lease_id = g.id
    JOIN concurrency_limits c ON c.id = ll.limit_id"""


async def release_lease(conn: Connection, lease_id: uuid.UUID) -> bool:
    """End a lease, freeing its slots. False if there was none (idempotent)."""
    return bool(await conn.fetch(_RELEASE, [lease_id]))


async def sweep_expired(conn: Connection, limit: int = 1000) -> int:
    """Delete leases that expired (their slots already count as free), waking waiters."""
    ids = await conn.fetch(
        """SELECT id FROM concurrency_leases WHERE expires <= clock_timestamp()
           ORDER BY expires LIMIT $1""",
        limit,
    )
    if ids:
        await conn.fetch(_RELEASE, [row["id"] for row in ids])
    return len(ids)
