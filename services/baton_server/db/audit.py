"""The audit log: who changed what, through which request, in one table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from baton_schemas.access import AuditEntry

from .types import Connection


@dataclass(frozen=True, slots=True)
class AuditRecord:
    method: str
    path: str
    origin: str = "api"
    key_id: uuid.UUID | None = None
    key_name: str | None = None
    route: str | None = None
    status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def insert_audit(conn: Connection, records: Sequence[AuditRecord]) -> None:
    """One statement for a batch."""
    await conn.execute(
        """INSERT INTO audit_log (at, key_id, key_name, origin, method, path, route, status, detail)
           SELECT at, key_id, key_name, origin, method, path, route, status, detail::jsonb
           FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::integer[], $9::text[])
                AS t(at, key_id, key_name, origin, method, path, route, status, detail)""",
        [r.at for r in records],
        [r.key_id for r in records],
        [r.key_name for r in records],
        [r.origin for r in records],
        [r.method for r in records],
        [r.path for r in records],
        [r.route for r in records],
        [r.status for r in records],
        [orjson.dumps(r.detail).decode() for r in records],  # text: any connection, codecs or not
    )


async def list_audit(
    conn: Connection,
    *,
    key_id: uuid.UUID | None = None,
    key_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first, keyset-paginated on id; the cursor is the last id of the page."""
    rows = await conn.fetch(
        """SELECT * FROM audit_log
           WHERE ($1::uuid IS NULL OR key_id = $1) AND ($2::text IS NULL OR key_name = $2)
             AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
             AND ($5::bigint IS NULL OR id < $5)
           ORDER BY id DESC LIMIT $6""",
        key_id,
        key_name,
        since,
        until,
        before_id,
        limit + 1,
    )
    items = [AuditEntry.model_validate(dict(row)) for row in rows[:limit]]
    return items, (str(items[-1].id) if len(rows) > limit else None)
