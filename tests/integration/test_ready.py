"""`/ready` says what is wrong with what this process really uses (issue 11, point 1): its
outbox's publishing tasks, and a topology it could not declare again after a reconnect. Each
test has a server context of its own: it breaks a part of it."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aio_pika
import httpx
import pytest

from baton_schemas.topology import pool_queue_name
from baton_server.api.app import create_app
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings

from ..support.backends import Backends, separate_backends
from ..support.waiting import eventually


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    with separate_backends(backends, "ready") as separate:
        yield separate


@dataclass
class Own:
    client: httpx.AsyncClient
    ctx: ServerContext


@pytest.fixture
async def own(own_backends: Backends, server_settings: ServerSettings) -> AsyncIterator[Own]:
    """An API app on a server context of its own, without keys (only /ready and pools here)."""
    settings = server_settings.model_copy(
        update={
            "database_url": own_backends.database_url,
            "broker_url": own_backends.broker_url,
            "auth_required": False,
        }
    )
    ctx = await ServerContext.open(settings, name="baton-ready-test")
    try:
        app = create_app(settings, ctx)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://baton.test") as client:
                yield Own(client, ctx)
    finally:
        await ctx.close()


async def _ready(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    response = await client.get("/ready")
    return response.status_code, response.json()


async def test_ready_is_503_when_the_outbox_is_not_running(own: Own) -> None:
    assert await _ready(own.client) == (200, {"postgres": "ok", "rabbitmq": "ok", "outbox": "ok"})
    await own.ctx.outbox.stop()
    status, checks = await _ready(own.client)
    assert status == 503
    assert checks["outbox"] == "unavailable: its publishing tasks are not running"
    assert checks["rabbitmq"] == "ok" and checks["postgres"] == "ok"


async def test_ready_is_503_while_the_topology_cannot_be_declared_again(
    own: Own, own_backends: Backends
) -> None:
    assert (await own.client.post("/api/work_pools", json={"name": "ready-pool"})).status_code == 201
    queue = pool_queue_name("ready-pool", "default")
    # someone replaces the pool's queue with one of another type: Baton's declaration of it,
    # when its connection comes back, is refused (PRECONDITION_FAILED)
    connection = await aio_pika.connect(own_backends.broker_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "classic"})
        await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "close_all_connections", "-p", own_backends.vhost, "tests: cut"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    async def refused() -> dict[str, str] | None:
        status, checks = await _ready(own.client)
        return (
            checks if status == 503 and "topology could not be declared again" in checks["rabbitmq"] else None
        )

    checks = await eventually(refused, timeout=30, interval=0.2, what="/ready naming the topology")
    assert checks is not None and "PRECONDITION_FAILED" in checks["rabbitmq"] and queue in checks["rabbitmq"]

    # the queue put right, the server declares it again by itself and is ready
    connection = await aio_pika.connect(own_backends.broker_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)

    async def ready() -> bool:
        return (await _ready(own.client))[0] == 200

    await eventually(ready, timeout=30, interval=0.2, what="/ready once the queue can be declared")
