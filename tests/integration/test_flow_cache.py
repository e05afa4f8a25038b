"""The tracker creates runs without reading their flow each time (`FlowCache`), and a flow
deleted behind its back (an operator's DELETE) does not make creation fail."""

from __future__ import annotations

import uuid

from baton_schemas.runs import FlowRunCreate
from baton_server.db.flow_runs import create_flow_run
from baton_server.db.flows import FlowCache
from baton_server.db.types import Connection


async def test_a_cached_flow_is_not_read_again(conn: Connection) -> None:
    flows, name = FlowCache(), f"cached-{uuid.uuid4().hex[:8]}"
    first, _, created = await create_flow_run(conn, FlowRunCreate(flow_name=name), flows=flows)
    assert created
    cached = flows.get(name)
    assert cached is not None and cached["id"] == first.flow_id and flows.get(first.flow_id) is cached
    # read from the cache, not the table: a slug changed there behind its back is not seen
    await conn.execute("UPDATE flows SET slug = 'not-read' WHERE id = $1", first.flow_id)
    second, _, _ = await create_flow_run(conn, FlowRunCreate(flow_name=name), flows=flows)
    assert (second.flow_id, second.flow_name) == (first.flow_id, name)
    by_id, _, _ = await create_flow_run(conn, FlowRunCreate(flow_id=first.flow_id), flows=flows)
    assert by_id.flow_id == first.flow_id


async def test_a_flow_deleted_since_it_was_cached_is_read_afresh(conn: Connection) -> None:
    flows, name = FlowCache(), f"deleted-{uuid.uuid4().hex[:8]}"
    first, _, _ = await create_flow_run(conn, FlowRunCreate(flow_name=name), flows=flows)
    await conn.execute("DELETE FROM flows WHERE id = $1", first.flow_id)  # its runs go with it

    again, _, created = await create_flow_run(conn, FlowRunCreate(flow_name=name), flows=flows)

    assert created and again.flow_id != first.flow_id and again.flow_name == name
    assert await conn.fetchval("SELECT name FROM flows WHERE id = $1", again.flow_id) == name
    assert flows.get(name)["id"] == again.flow_id  # type: ignore[index]


def test_each_index_is_bounded_least_recently_used_first() -> None:
    flows = FlowCache(size=2)
    ids = [uuid.uuid4() for _ in range(3)]
    rows = [{"id": ids[i], "name": f"f{i}", "slug": f"f{i}"} for i in range(3)]
    flows.put(rows[0])
    flows.put(rows[1])
    assert flows.get("f0") is rows[0]  # now the most recently used name
    flows.put(rows[2])
    assert flows.get("f1") is None and flows.get("f0") is rows[0] and flows.get("f2") is rows[2]
    assert flows.get(ids[0]) is None  # by id, f0 was the least recently used
    assert flows.get(ids[1]) is rows[1]
