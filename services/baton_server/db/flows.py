"""Flows: registered by name, idempotently."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from baton_schemas import slugify
from baton_schemas.flows import Flow, FlowCreate

from .rows import flow_from_row
from .types import Connection


class FlowCache:
    """Flows as a run's creation needs them (id, name, slug, which never change once a flow
    exists), by name and by id: the tracker creates runs of a handful of flows thousands of
    times a second, and each read is a statement. Each index is bounded, least recently used
    first. A flow deleted since is forgotten when a run's insert fails on it (`create_flow_run`)."""

    def __init__(self, size: int = 1_000) -> None:
        self._by_name: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self._by_id: OrderedDict[uuid.UUID, Mapping[str, Any]] = OrderedDict()
        self._size = size

    def get(self, key: str | uuid.UUID) -> Mapping[str, Any] | None:
        rows: OrderedDict[Any, Mapping[str, Any]] = (
            self._by_id if isinstance(key, uuid.UUID) else self._by_name
        )
        row = rows.get(key)
        if row is not None:
            rows.move_to_end(key)
        return row

    def put(self, row: Mapping[str, Any]) -> None:
        for rows, key in ((self._by_name, row["name"]), (self._by_id, row["id"])):
            rows[key] = row
            rows.move_to_end(key)
            if len(rows) > self._size:
                rows.popitem(last=False)

    def forget(self, row: Mapping[str, Any]) -> None:
        self._by_name.pop(row["name"], None)
        self._by_id.pop(row["id"], None)


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
