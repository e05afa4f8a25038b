"""Events published straight to `baton.events`: stored once, acked after the commit, and
poison parked in `baton.dead` with its reason while the stream goes on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from baton._amqp import Channel, Connection, Delivery, Properties
from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.events import MAX_EVENT_BYTES
from baton_schemas.topology import DEAD, EVENTS
from baton_server.context import ServerContext
from baton_server.events.service import EventsService

from ...support.backends import Backends
from ...support.waiting import eventually


@pytest.fixture
async def channel(backends: Backends) -> AsyncIterator[Channel]:
    connection = await Connection.open(backends.broker_url, name="events-tests")
    try:
        yield await connection.channel(confirms=True)
    finally:
        await connection.close()


async def _publish(
    channel: Channel, key: str, body: bytes, message_id: str, user_id: str | None = None
) -> None:
    confirm = channel.publish(
        EVENTS,
        key,
        body,
        Properties(content_type="application/json", message_id=message_id, user_id=user_id),
        mandatory=True,
    )
    assert confirm is not None
    await confirm


async def _stored(ctx: ServerContext, event_id: uuid.UUID) -> int:
    return int(await ctx.pool.fetchval("SELECT count(*) FROM events WHERE id = $1", event_id))


async def test_a_raw_event_is_stored_once_even_when_published_twice(
    ctx: ServerContext, events_service: EventsService, channel: Channel
) -> None:
    event_id = uuid.uuid4()
    body = orjson.dumps(
        {
            "id": str(event_id),
            "event": "order.created",
            "resource": {"baton.resource.id": "shop.order.42"},
            "payload": {"total": 18.5},
        }
    )
    await _publish(channel, "order.created", body, str(event_id))
    await _publish(channel, "order.created", body, str(event_id))
    await eventually(lambda: _stored(ctx, event_id), what="the event stored")
    # the copy is consumed too, and is not stored again
    await eventually(lambda: _queue_empty(channel), what="the store's queue drained")
    assert await _stored(ctx, event_id) == 1
    row = await ctx.pool.fetchrow("SELECT received, payload FROM events WHERE id = $1", event_id)
    assert row is not None
    assert row["payload"] == {"total": 18.5} and row["received"] is not None


async def _queue_empty(channel: Channel) -> bool:
    _, messages, _ = await channel.declare_queue("baton.event-store", passive=True)
    return messages == 0


async def test_poison_goes_to_baton_dead_with_its_reason_and_the_stream_goes_on(
    ctx: ServerContext, events_service: EventsService, channel: Channel
) -> None:
    # a queue of our own bound to baton.dead (fanout) sees every dead letter, others' too
    watch, _, _ = await channel.declare_queue("", exclusive=True)
    await channel.bind_queue(watch, DEAD, "")
    dead: dict[str, str] = {}

    def parked(message: Delivery) -> None:
        dead[message.message_id or ""] = str(message.headers.get(DeadLetterHeaders.REASON))
        message.ack()

    await channel.consume(watch, parked)
    tag = uuid.uuid4().hex[:8]
    oversized = orjson.dumps(
        {
            "event": "big.one",
            "resource": {"baton.resource.id": "x"},
            "payload": {"blob": "x" * MAX_EVENT_BYTES},
        }
    )
    poison = {
        f"json-{tag}": ("bad.json", b'{"event": "bad.json", "resource": '),
        f"utf8-{tag}": ("bad.utf8", b'{"event": "bad.utf8", "\xff\xfe": 1}'),
        f"schema-{tag}": ("bad.schema", orjson.dumps({"event": "bad.schema", "resource": {"no": "id"}})),
        f"size-{tag}": ("big.one", oversized),
        f"key-{tag}": (
            "other.key",
            orjson.dumps({"event": "bad.key", "resource": {"baton.resource.id": "x"}}),
        ),
        f"reserved-{tag}": (
            "baton.flow-run.Failed",
            orjson.dumps({"event": "baton.flow-run.Failed", "resource": {"baton.resource.id": "x"}}),
        ),
    }
    for message_id, (key, body) in poison.items():
        await _publish(channel, key, body, message_id)
    good = uuid.uuid4()
    await _publish(
        channel,
        "after.poison",
        orjson.dumps({"id": str(good), "event": "after.poison", "resource": {"baton.resource.id": "x"}}),
        str(good),
    )
    await eventually(lambda: _stored(ctx, good), what="the good event stored after the poison")
    await eventually(lambda: _all(dead, poison), what="every poison message in baton.dead")
    assert dead[f"json-{tag}"].startswith("malformed JSON")
    assert dead[f"utf8-{tag}"].startswith("not UTF-8")
    assert dead[f"schema-{tag}"].startswith("schema-invalid: resource")
    assert dead[f"size-{tag}"].startswith("oversized")
    assert "is not the event's name" in dead[f"key-{tag}"]
    assert "Baton's own" in dead[f"reserved-{tag}"]


async def _all(dead: dict[str, str], wanted: dict[str, tuple[str, bytes]]) -> bool:
    await asyncio.sleep(0)
    return set(wanted) <= set(dead)


async def test_baton_names_from_the_servers_own_user_are_accepted(
    ctx: ServerContext, events_service: EventsService, channel: Channel, backends: Backends
) -> None:
    """RabbitMQ checks `user_id` against the connection's user: the tests connect as the
    server's user, so this is what the outbox's own state events look like."""
    event_id = uuid.uuid4()
    body = orjson.dumps(
        {"id": str(event_id), "event": "baton.custom.Thing", "resource": {"baton.resource.id": "x"}}
    )
    await _publish(channel, "baton.custom.Thing", body, str(event_id), user_id="guest")
    await eventually(lambda: _stored(ctx, event_id), what="a baton. event from the server's user")
