"""Flows: registered by name, idempotently."""

from __future__ import annotations

import uuid

from baton_schemas import slugify
from baton_schemas.flows import Flow, FlowCreate

from .rows import flow_from_row
from .types import Connection


async def get_or_create_flow(conn: Connection, create: FlowCreate) -> Flow:
    row = await conn.fetchrow(
        """INSERT INTO flows (id, name, slug, description, tags) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (name) DO UPDATE SET
               description = COALESCE(EXCLUDED.description, flows.description)
           RETURNING *""",
        uuid.uuid4(),
        create.name,
        slugify(create.name),
        create.description,
        create.tags,
    )
    assert row is not None
    return flow_from_row(row)


async def list_flows(conn: Connection, *, limit: int = 200) -> list[Flow]:
    rows = await conn.fetch("SELECT * FROM flows ORDER BY name LIMIT $1", limit)
    return [flow_from_row(r) for r in rows]


async def read_flow(conn: Connection, flow_id: uuid.UUID) -> Flow | None:
    row = await conn.fetchrow("SELECT * FROM flows WHERE id = $1", flow_id)
    return flow_from_row(row) if row else None
