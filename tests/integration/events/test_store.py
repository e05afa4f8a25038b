"""The event store: idempotent batches, filters, keyset pages, and retention by partition."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from baton_schemas import utcnow
from baton_schemas.events import Event
from baton_server.context import ServerContext
from baton_server.db.types import Connection
from baton_server.events.partitions import Partitions, apply_retention, existing_days, partition_name
from baton_server.events.store import EventFilter, EventRow, event_row, read_events, store_events

from ...support.waiting import eventually


def _event(name: str, resource_id: str, **fields: object) -> Event:
    return Event.model_validate({"event": name, "resource": {"baton.resource.id": resource_id}, **fields})


async def _store(conn: Connection, events: list[Event]) -> int:
    return await store_events(conn, [event_row(e, utcnow()) for e in events], Partitions())


async def test_a_batch_is_stored_once_however_often_it_arrives(conn: Connection) -> None:
    tag = uuid.uuid4().hex[:8]
    events = [_event(f"idem{tag}.e{i}", f"r.{tag}") for i in range(5)]
    assert await _store(conn, events) == 5
    assert await _store(conn, [*events, events[0]]) == 0  # a redelivery, twice in one batch too
    count = await conn.fetchval("SELECT count(*) FROM events WHERE resource_id = $1", f"r.{tag}")
    assert count == 5


def _stamped_copy(event_id: uuid.UUID, tag: str, arrived_seconds_ago: float) -> EventRow:
    """A copy of an event that came without `occurred`, as the store stamps it on arrival."""
    event = Event.model_validate(
        {"id": str(event_id), "event": f"s{tag}.x", "resource": {"baton.resource.id": tag}}
    )
    arrived = utcnow() - timedelta(seconds=arrived_seconds_ago)
    row = event_row(event, arrived)._replace(occurred=arrived)
    assert row.stamped
    return row


async def test_stamped_copies_are_stored_once_whichever_arrives_first(conn: Connection) -> None:
    tag = uuid.uuid4().hex[:8]
    event_id = uuid.uuid4()
    later, earlier = _stamped_copy(event_id, tag, 1), _stamped_copy(event_id, tag, 5)
    assert await store_events(conn, [later], Partitions()) == 1
    assert await store_events(conn, [earlier], Partitions()) == 0  # redelivered, stored before
    assert await conn.fetchval("SELECT count(*) FROM events WHERE id = $1", event_id) == 1


async def test_stamped_copies_in_concurrent_batches_are_stored_once(ctx: ServerContext) -> None:
    """Two statements storing copies at once: the second must see the first's, though it was
    not committed when the second began."""
    tag = uuid.uuid4().hex[:8]
    event_id = uuid.uuid4()
    async with ctx.pool.acquire() as first, ctx.pool.acquire() as second:
        other_pid = await second.fetchval("SELECT pg_backend_pid()")
        transaction = first.transaction()
        await transaction.start()
        try:
            assert await store_events(first, [_stamped_copy(event_id, tag, 1)], Partitions()) == 1
            # an earlier-stamped copy: the stored one is later than it, in another batch
            racing = asyncio.create_task(
                store_events(second, [_stamped_copy(event_id, tag, 3)], Partitions())
            )

            async def waiting_or_done() -> bool:
                if racing.done():
                    return True
                state = await first.fetchval(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", other_pid
                )
                return bool(state == "Lock")

            await eventually(waiting_or_done, what="the second statement blocked (or finished)")
        finally:
            await transaction.commit()
        await racing
    assert await ctx.pool.fetchval("SELECT count(*) FROM events WHERE id = $1", event_id) == 1


async def test_filters_on_name_resource_related_and_time(conn: Connection) -> None:
    tag = uuid.uuid4().hex[:8]
    now = utcnow()
    flow = {
        "baton.resource.id": f"baton.flow.{tag}",
        "baton.resource.role": "flow",
        "baton.resource.name": "etl",
    }
    events = [
        _event(f"o{tag}.created", f"shop.{tag}.1", occurred=now - timedelta(minutes=3), payload={"n": 1}),
        _event(f"o{tag}.item.added", f"shop.{tag}.1", occurred=now - timedelta(minutes=2), related=[flow]),
        _event(f"o{tag}.created", f"shop.{tag}.2", occurred=now - timedelta(minutes=1)),
        _event(f"x{tag}.created", f"cart.{tag}.9", occurred=now),
    ]
    events[3].resource["team"] = "data"
    await _store(conn, events)

    async def names(**filters: object) -> list[str]:
        items, _ = await read_events(conn, EventFilter.parse(**filters), limit=100)  # type: ignore[arg-type]
        return [
            f"{e['event'].removeprefix(tag)}@{e['resource']['baton.resource.id'].rsplit('.', 1)[-1]}"
            for e in items
        ]

    assert await names(names=[f"o{tag}.created"]) == [f"o{tag}.created@2", f"o{tag}.created@1"]
    assert len(await names(names=[f"o{tag}.*"])) == 3
    assert len(await names(names=[f"*{tag}.created"])) == 3
    assert await names(names=[f"o{tag}.*"], resource=[f"baton.resource.id=shop.{tag}.1"]) == [
        f"o{tag}.item.added@1",
        f"o{tag}.created@1",
    ]
    assert await names(resource=[f"baton.resource.id=cart.{tag}.*", "team=data"]) == [f"x{tag}.created@9"]
    assert await names(resource=[f"baton.resource.id=cart.{tag}.*", "team=ops"]) == []
    assert await names(related=[f"baton.flow.{tag}"]) == [f"o{tag}.item.added@1"]
    assert await names(related=["baton.resource.role=flow,baton.resource.name=etl"], names=[f"o{tag}.*"]) == [
        f"o{tag}.item.added@1"
    ]
    window = await names(
        names=[f"*{tag}*"], since=now - timedelta(minutes=2, seconds=30), until=now - timedelta(seconds=30)
    )
    assert window == [f"o{tag}.created@2", f"o{tag}.item.added@1"]
    # what was stored is read back as it was sent
    items, _ = await read_events(
        conn, EventFilter.parse(names=[f"o{tag}.created"], resource=[f"baton.resource.id=shop.{tag}.1"])
    )
    assert Event.model_validate({k: v for k, v in items[0].items()}).payload == {"n": 1}


async def test_keyset_pages_walk_everything_once(conn: Connection) -> None:
    tag = uuid.uuid4().hex[:8]
    now = utcnow()
    same_time = [_event(f"p{tag}.e", f"r.{tag}", occurred=now) for _ in range(7)]  # ties on time
    others = [_event(f"p{tag}.e", f"r.{tag}", occurred=now - timedelta(seconds=i)) for i in range(1, 6)]
    await _store(conn, same_time + others)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await read_events(conn, EventFilter.parse(names=[f"p{tag}.e"]), cursor=cursor, limit=4)
        seen += [e["id"] for e in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 12
    with pytest.raises(ValueError, match="cursor"):
        await read_events(conn, EventFilter(), cursor="not-a-cursor")


async def test_retention_drops_old_days_partitions_and_keeps_recent_ones(conn: Connection) -> None:
    now = utcnow()
    tag = uuid.uuid4().hex[:8]
    old = [_event(f"ret{tag}.old", "r", occurred=now - timedelta(days=d)) for d in (9, 8)]
    recent = [_event(f"ret{tag}.recent", "r", occurred=now - timedelta(days=d)) for d in (7, 1, 0)]
    await _store(conn, old + recent)
    days = await existing_days(conn)
    assert {(now - timedelta(days=d)).date() for d in (9, 8, 7, 1, 0)} <= set(days)

    dropped = await apply_retention(conn, now, 7)

    assert {(now - timedelta(days=d)).date() for d in (9, 8)} <= set(dropped)
    left = set(await existing_days(conn))
    assert not {(now - timedelta(days=d)).date() for d in (9, 8)} & left
    assert {(now - timedelta(days=d)).date() for d in (7, 1, 0)} <= left
    assert await conn.fetchval("SELECT count(*) FROM events WHERE event = $1", f"ret{tag}.old") == 0
    assert await conn.fetchval("SELECT count(*) FROM events WHERE event = $1", f"ret{tag}.recent") == 3
    table = partition_name("event_resources", (now - timedelta(days=9)).date())
    assert await conn.fetchval("SELECT to_regclass($1)", table) is None
