"""Events under failure: RabbitMQ restarted mid-burst, the event consumer killed mid-burst, and
an outside publisher forging Baton's own event names. Every event confirmed to its publisher (or
answered 202) is stored, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from baton._amqp import AmqpError, ChannelClosed, Connection, Delivery, Properties
from baton._amqp.errors import ConnectionClosed
from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD, EVENTS
from baton_server.api.app import create_app
from baton_server.api.auth import Scope, create_api_key
from baton_server.context import ServerContext
from baton_server.events.service import EventsService
from baton_server.settings import ServerSettings

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.processes import server_process
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos


@pytest.fixture
async def events_service(chaos_ctx: ServerContext) -> AsyncIterator[EventsService]:
    async def linked() -> bool:
        """The shared context's link is connected again (an earlier test restarted the broker)."""
        try:
            return chaos_ctx.link.up.is_set() and not chaos_ctx.link.connection.closed.done()
        except ConnectionClosed:
            return False

    await eventually(linked, timeout=60, what="the chaos context's broker link back")
    service = EventsService(chaos_ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class Burst:
    """Publishes events one after another with confirms, reconnecting while the broker is
    away; `confirmed` holds the ids the broker confirmed."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.confirmed: list[uuid.UUID] = []
        self.failed = 0

    async def run(self, count: int) -> None:
        connection: Connection | None = None
        sent = 0
        while sent < count:
            try:
                if connection is None or connection.closed.done():
                    connection = await Connection.open(self.url, name="chaos-burst", timeout=2)
                    channel = await connection.channel(confirms=True)
                event_id = uuid.uuid4()
                body = orjson.dumps(
                    {"id": str(event_id), "event": self.name, "resource": {"baton.resource.id": "burst"}}
                )
                confirm = channel.publish(
                    EVENTS,
                    self.name,
                    body,
                    Properties(content_type="application/json", message_id=str(event_id)),
                    mandatory=True,
                )
                assert confirm is not None
                await asyncio.wait_for(confirm, 5)
                self.confirmed.append(event_id)
                sent += 1
            except (AmqpError, OSError, TimeoutError):
                self.failed += 1
                connection = None
                await asyncio.sleep(0.1)  # a publisher's own retry pace, not synchronisation
        if connection is not None:
            await connection.close()


async def _stored_once(ctx: ServerContext, ids: list[uuid.UUID]) -> bool:
    count = await ctx.pool.fetchval("SELECT count(*) FROM events WHERE id = ANY($1::uuid[])", ids)
    return bool(count == len(ids))


async def _count(ctx: ServerContext, ids: list[uuid.UUID]) -> int:
    return int(await ctx.pool.fetchval("SELECT count(*) FROM events WHERE id = ANY($1::uuid[])", ids))


async def test_broker_restart_mid_burst_loses_no_confirmed_event(
    chaos_ctx: ServerContext,
    chaos_settings: ServerSettings,
    chaos_backends: Backends,
    private_mq: PrivateRabbitMQ,
    events_service: EventsService,
) -> None:
    name = f"burst{uuid.uuid4().hex[:8]}.amqp"
    burst = Burst(chaos_backends.broker_url, name)
    accepted: list[uuid.UUID] = []
    app = create_app(chaos_settings, chaos_ctx)
    async with chaos_ctx.pool.acquire() as conn:
        _, key = await create_api_key(conn, name="chaos-events", scopes={Scope.EVENTS})
    stop = asyncio.Event()

    async def post_batches(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            batch = [
                {"id": str(uuid.uuid4()), "event": f"{name}.http", "resource": {"baton.resource.id": "b"}}
                for _ in range(20)
            ]
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post("/api/events", json=batch)
                if response.status_code == 202:  # only these count as accepted
                    accepted.extend(uuid.UUID(i) for i in response.json()["ids"])
            await asyncio.sleep(0.05)

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://baton.test", headers=headers
        ) as client:
            publishing = asyncio.create_task(burst.run(3000))
            posting = asyncio.create_task(post_batches(client))
            await eventually(lambda: _at_least(burst.confirmed, 500), timeout=60, what="part of the burst")
            await asyncio.to_thread(private_mq.stop_app)
            await asyncio.to_thread(private_mq.start_app)
            await asyncio.wait_for(publishing, 120)
            before = len(accepted)
            await eventually(lambda: _at_least(accepted, before + 40), timeout=60, what="posts after")
            stop.set()
            await posting
    assert burst.failed > 0  # the restart did hit the burst
    ids = burst.confirmed + accepted
    await eventually(
        lambda: _stored_once(chaos_ctx, ids), timeout=90, interval=0.5, what="every confirmed event"
    )
    assert await _count(chaos_ctx, ids) == len(set(ids)) == len(ids)


async def _at_least(items: list[uuid.UUID], n: int) -> bool:
    await asyncio.sleep(0)
    return len(items) >= n


async def test_consumer_killed_mid_burst_stores_every_event_once(
    chaos_ctx: ServerContext, chaos_backends: Backends, tmp_path: Path
) -> None:
    name = f"kill{uuid.uuid4().hex[:8]}.amqp"
    burst = Burst(chaos_backends.broker_url, name)
    with server_process(chaos_backends, tmp_path, "events") as first:
        publishing = asyncio.create_task(burst.run(4000))

        async def some_stored() -> bool:
            return len(burst.confirmed) > 300 and await _count(chaos_ctx, burst.confirmed) > 200

        await eventually(some_stored, timeout=60, what="the consumer storing part of the burst")
        first.process.kill()  # kill -9: unacked deliveries go back to the queue
        first.process.wait(10)
    await asyncio.wait_for(publishing, 120)
    assert await _count(chaos_ctx, burst.confirmed) < len(burst.confirmed)  # it died mid-burst
    with server_process(chaos_backends, tmp_path, "events"):
        await eventually(
            lambda: _stored_once(chaos_ctx, burst.confirmed),
            timeout=90,
            interval=0.5,
            what="every event stored",
        )
    assert await _count(chaos_ctx, burst.confirmed) == len(burst.confirmed)


async def test_an_outside_user_cannot_forge_batons_events(
    chaos_ctx: ServerContext,
    chaos_backends: Backends,
    private_mq: PrivateRabbitMQ,
    events_service: EventsService,
) -> None:
    with contextlib.suppress(Exception):
        private_mq.ctl("add_user", "outsider", "outsider-pw")
    private_mq.ctl("set_permissions", "-p", chaos_backends.vhost, "outsider", "^$", "^baton\\.events$", "^$")
    watcher = await Connection.open(chaos_backends.broker_url, name="dead-watch")
    outsider = await Connection.open(
        private_mq.url(chaos_backends.vhost, user="outsider", password="outsider-pw"), name="o"
    )
    try:
        watch_channel = await watcher.channel()
        watch, _, _ = await watch_channel.declare_queue("", exclusive=True)
        await watch_channel.bind_queue(watch, DEAD, "")
        reasons: dict[str, str] = {}

        def parked(message: Delivery) -> None:
            reasons[message.message_id or ""] = str(message.headers.get(DeadLetterHeaders.REASON))
            message.ack()

        await watch_channel.consume(watch, parked)
        channel = await outsider.channel(confirms=True)
        body = orjson.dumps(
            {"event": "baton.flow-run.Failed", "resource": {"baton.resource.id": "baton.flow-run.x"}}
        )
        for message_id, user in (("no-user", None), ("as-outsider", "outsider")):
            confirm = channel.publish(
                EVENTS,
                "baton.flow-run.Failed",
                body,
                Properties(content_type="application/json", message_id=message_id, user_id=user),
                mandatory=True,
            )
            assert confirm is not None
            await confirm
        # claiming to be the server's user: RabbitMQ itself refuses the publish
        confirm = channel.publish(
            EVENTS,
            "baton.flow-run.Failed",
            body,
            Properties(content_type="application/json", message_id="as-server", user_id="guest"),
            mandatory=True,
        )
        assert confirm is not None
        with pytest.raises(ChannelClosed, match="user_id"):
            await confirm
        await eventually(lambda: _has(reasons, "no-user", "as-outsider"), what="both forgeries parked")
        assert "set no user_id" in reasons["no-user"]
        assert "user 'outsider'" in reasons["as-outsider"]
        forged = await chaos_ctx.pool.fetchval(
            "SELECT count(*) FROM events WHERE resource_id = 'baton.flow-run.x'"
        )
        assert forged == 0
    finally:
        await outsider.close()
        await watcher.close()


async def _has(reasons: dict[str, str], *keys: str) -> bool:
    await asyncio.sleep(0)
    return all(k in reasons for k in keys)
