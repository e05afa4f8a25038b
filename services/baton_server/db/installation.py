"""The installation id of this database (migration 0009): one Baton per database and vhost."""

from __future__ import annotations

from uuid import UUID

from .types import Connection


async def installation_id(conn: Connection) -> UUID:
    value: UUID = await conn.fetchval("SELECT id FROM installation")
    return value
