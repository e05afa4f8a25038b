"""The event store: batched, idempotent inserts, and filtered, keyset-paginated reads.

A batch is one statement: the events (a redelivered one's key exists and it is skipped), one
`event_resources` row per related resource of each new event, and a NOTIFY on `baton_events`
carrying the batch's range of `seq` (delivered when it commits) for the live stream.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from baton_schemas.events import RESOURCE_ID, RESOURCE_ROLE, Event
from baton_schemas.matching import LabelFilter, Pattern, PatternKind, compile_pattern

from ..db.types import Connection
from ..metrics import EVENTS_STORED
from .partitions import Partitions, day_of

NOTIFY_CHANNEL = "baton_events"


class EventRow(NamedTuple):
    """An event as stored: its JSON parts serialised once."""

    occurred: datetime
    id: UUID
    event: str
    resource_id: str
    resource: str
    related: str
    payload: str
    follows: UUID | None
    received: datetime
    stamped: bool = False  # `occurred` is Baton's: the event came without one


def event_row(event: Event, received: datetime) -> EventRow:
    """An event's row; `stamped` when it came without an `occurred` of its own."""
    return EventRow(
        event.occurred,
        event.id,
        event.event,
        event.resource[RESOURCE_ID],
        orjson.dumps(event.resource).decode(),
        orjson.dumps(event.related).decode(),
        orjson.dumps(event.payload).decode(),
        event.follows,
        received,
        "occurred" not in event.model_fields_set,
    )


_INSERT = f"""
    WITH e AS (
        SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::text[], $8::uuid[], $9::timestamptz[], $10::bool[])
            AS e(occurred, id, event, resource_id, resource, related, payload, follows, received,
                 stamped)
    ), stored AS (
        INSERT INTO events (occurred, id, event, resource_id, resource, related, payload, follows,
            received, stamped)
        SELECT occurred, id, event, resource_id, resource::jsonb, related::jsonb, payload::jsonb,
            follows, received, stamped FROM e
        WHERE NOT e.stamped OR NOT EXISTS (
            SELECT 1 FROM events x WHERE x.stamped AND x.id = e.id
              AND x.occurred > e.occurred - interval '1 day'
              AND x.occurred < e.occurred + interval '1 day')
        ON CONFLICT DO NOTHING
        RETURNING occurred, id, seq, related
    ), related AS (
        INSERT INTO event_resources (occurred, event_id, resource_id, role, labels)
        SELECT s.occurred, s.id, r ->> '{RESOURCE_ID}', r ->> '{RESOURCE_ROLE}', r
        FROM stored s, jsonb_array_elements(s.related) r
        WHERE s.related <> '[]'::jsonb
    ), span AS (
        SELECT min(seq) AS first, max(seq) AS last, count(*) AS n FROM stored
    )
    SELECT n, pg_notify('{NOTIFY_CHANNEL}', first || '-' || last) IS NULL AS _
    FROM span WHERE n > 0
    UNION ALL SELECT 0, true FROM span WHERE n = 0"""


# Stamped copies of one event have different keys, so the primary key cannot keep the second
# out; the NOT EXISTS above does, provided no other statement is storing a copy at the same
# time (it would not see that copy, uncommitted). So a batch with stamped events first takes a
# transaction-scoped advisory lock per stamped id (in one order: no deadlock), and its INSERT,
# a statement of its own, runs after any other holder committed, and sees its copy.
_STAMPED_LOCK_CLASS = 0x0BA7_E7E8  # the first key of pg_advisory_xact_lock(int, int)
_LOCK_STAMPED = f"""
    SELECT pg_advisory_xact_lock({_STAMPED_LOCK_CLASS}, k)
    FROM (SELECT DISTINCT unnest($1::int[]) AS k ORDER BY 1) keys"""


def _lock_key(event_id: UUID) -> int:
    return (event_id.int & 0xFFFF_FFFF) - 0x8000_0000  # an int4: collisions only serialise


async def store_events(conn: Connection, rows: Sequence[EventRow], partitions: Partitions) -> int:
    """Store a batch; returns how many were new. Copies of an event (by id) are stored once,
    also when they are in batches stored at the same time."""
    if not rows:
        return 0
    unique = list({r.id.int: r for r in reversed(rows)}.values())  # a copy in the same batch
    if len(unique) < len(rows):
        rows = unique
    await partitions.ensure(conn, {day_of(r.occurred) for r in rows})
    columns = [list(c) for c in zip(*rows, strict=True)]
    stamped = [_lock_key(r.id) for r in rows if r.stamped]
    if not stamped:
        record = await conn.fetchrow(_INSERT, *columns)
    else:
        async with conn.transaction():
            await conn.execute(_LOCK_STAMPED, stamped)
            record = await conn.fetchrow(_INSERT, *columns)
    stored = int(record["n"]) if record else 0
    EVENTS_STORED.inc(stored)
    return stored


# --- reading -------------------------------------------------------------------------------------

_COLUMNS = "e.occurred, e.id, e.seq, e.event, e.resource, e.related, e.payload, e.follows, e.received"


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the Event's JSON fields (the pool decodes jsonb columns)."""
    return {
        "schema_version": 1,
        "id": str(row["id"]),
        "occurred": row["occurred"],
        "event": row["event"],
        "resource": row["resource"],
        "related": row["related"],
        "payload": row["payload"],
        "follows": None if row["follows"] is None else str(row["follows"]),
        "received": row["received"],
    }


@dataclass(frozen=True)
class EventFilter:
    """Which events: any of `names`, a resource matching `resource`, for each of `related` a
    related resource matching it, occurred in [since, until)."""

    names: tuple[Pattern, ...] = ()
    resource: LabelFilter = field(default_factory=lambda: LabelFilter({}))
    related: tuple[LabelFilter, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(
        cls,
        names: Sequence[str] = (),
        resource: Sequence[str] = (),
        related: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> EventFilter:
        """From query parameters: names are patterns; `resource` items are KEY=PATTERN; each
        `related` item is one related resource's labels, `KEY=PATTERN[,KEY=PATTERN...]`, or a
        bare pattern of its `baton.resource.id`. ValueError says what is wrong."""
        related_filters = []
        for item in related:
            pairs = [p.strip() for p in item.split(",")] if "=" in item else [f"{RESOURCE_ID}={item}"]
            related_filters.append(LabelFilter.parse(pairs))
        if since is not None and until is not None and since >= until:
            raise ValueError("since must be before until")
        return cls(
            names=tuple(compile_pattern(n) for n in names),
            resource=LabelFilter.parse(resource),
            related=tuple(related_filters),
            since=since,
            until=until,
        )

    def matches(self, event: Mapping[str, Any]) -> bool:
        """The same filter, in memory, on an event's JSON fields (the live stream's)."""
        if self.names and not any(p.matches(event["event"]) for p in self.names):
            return False
        if self.resource and not self.resource.matches(event["resource"]):
            return False
        for wanted in self.related:
            if not any(wanted.matches(r) for r in event["related"]):
                return False
        occurred = event["occurred"]
        if isinstance(occurred, str):
            occurred = datetime.fromisoformat(occurred)
        if self.since is not None and occurred < self.since:
            return False
        return not (self.until is not None and occurred >= self.until)


class _Query:
    def __init__(self) -> None:
        self.args: list[Any] = []
        self.where: list[str] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def text_match(self, column: str, patterns: Sequence[Pattern]) -> str:
        parts = []
        for p in patterns:
            if p.kind is PatternKind.EXACT:
                parts.append(f"{column} = {self.arg(p.text)}")
            else:
                parts.append(f"{column} LIKE {self.arg(p.sql_like())} ESCAPE '\\'")
        return "(" + " OR ".join(parts) + ")"

    def labels(self, labels: LabelFilter, columns: Mapping[str, str], document: str) -> list[str]:
        clauses = []
        for key, patterns in labels.labels.items():
            column = columns.get(key) or f"({document} ->> {self.arg(key)})"
            clauses.append(self.text_match(column, patterns))
        return clauses


def encode_cursor(occurred: datetime, event_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{occurred.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        occurred, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(occurred), UUID(event_id)
    except Exception as exc:
        raise ValueError("cursor is not one this API returned") from exc


def _filtered(query: _Query, wanted: EventFilter) -> None:
    if wanted.names:
        query.where.append(query.text_match("e.event", wanted.names))
    query.where += query.labels(wanted.resource, {RESOURCE_ID: "e.resource_id"}, "e.resource")
    for related in wanted.related:
        sub = _Query()
        sub.args = query.args  # one argument list for the whole statement
        clauses = sub.labels(related, {RESOURCE_ID: "r.resource_id", RESOURCE_ROLE: "r.role"}, "r.labels")
        if wanted.since is not None:
            clauses.append(f"r.occurred >= {query.arg(wanted.since)}")
        if wanted.until is not None:
            clauses.append(f"r.occurred < {query.arg(wanted.until)}")
        query.where.append(
            "(e.occurred, e.id) IN (SELECT r.occurred, r.event_id FROM event_resources r"
            f" WHERE {' AND '.join(clauses) or 'true'})"
        )
    if wanted.since is not None:
        query.where.append(f"e.occurred >= {query.arg(wanted.since)}")
    if wanted.until is not None:
        query.where.append(f"e.occurred < {query.arg(wanted.until)}")


async def read_events(
    conn: Connection, wanted: EventFilter, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paginated on (occurred, id)."""
    query = _Query()
    _filtered(query, wanted)
    if cursor:
        occurred, event_id = decode_cursor(cursor)
        query.where.append(f"(e.occurred, e.id) < ({query.arg(occurred)}, {query.arg(event_id)})")
    clause = f"WHERE {' AND '.join(query.where)}" if query.where else ""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM events e {clause}
            ORDER BY e.occurred DESC, e.id DESC LIMIT {query.arg(limit + 1)}""",
        *query.args,
    )
    items = [event_json(r) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1]["occurred"], rows[limit - 1]["id"]) if len(rows) > limit else None
    )
    return items, next_cursor


async def read_span(conn: Connection, first: int, last: int) -> list[Mapping[str, Any]]:
    """The events stored with `seq` in [first, last], in that order (the stream's live feed)."""
    return await conn.fetch(  # type: ignore[no-any-return]
        f"SELECT {_COLUMNS} FROM events e WHERE e.seq BETWEEN $1 AND $2 ORDER BY e.seq", first, last
    )


async def read_since(
    conn: Connection, wanted: EventFilter, received: datetime, *, after: int = 0, limit: int
) -> list[Mapping[str, Any]]:
    """Stored events matching `wanted` received at or after `received` (and stored after `seq`
    `after`), in stored order."""
    query = _Query()
    _filtered(query, wanted)
    query.where.append(f"e.received >= {query.arg(received)}")
    query.where.append(f"e.seq > {query.arg(after)}")
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM events e WHERE {" AND ".join(query.where)}
            ORDER BY e.seq LIMIT {query.arg(limit)}""",
        *query.args,
    )
    return rows  # type: ignore[no-any-return]


async def received_of(conn: Connection, seq: int) -> datetime | None:
    value = await conn.fetchval("SELECT received FROM events WHERE seq = $1", seq)
    return value  # type: ignore[no-any-return]
