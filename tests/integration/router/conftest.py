"""The router running in the test process, a deployment for it to run, and helpers: publish an
event over raw AMQP, wait until every router's index has an automation, read firings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from baton._amqp import Channel, Connection, Properties
from baton_schemas.topology import EVENTS
from baton_server.context import ServerContext
from baton_server.router.service import RouterService

from ...support.backends import Backends
from ...support.waiting import eventually


@pytest.fixture(scope="session")
async def router(ctx: ServerContext) -> AsyncIterator[RouterService]:
    service = RouterService(ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def channel(backends: Backends) -> AsyncIterator[Channel]:
    connection = await Connection.open(backends.broker_url, name="router-tests")
    try:
        yield await connection.channel(confirms=True)
    finally:
        await connection.close()


async def publish(channel: Channel, event: dict[str, Any]) -> None:
    event.setdefault("id", str(uuid.uuid4()))
    confirm = channel.publish(
        EVENTS,
        event["event"],
        orjson.dumps(event),
        Properties(content_type="application/json", message_id=event["id"]),
        mandatory=True,
    )
    assert confirm is not None
    await confirm


@pytest.fixture
async def deployment(api: httpx.AsyncClient) -> dict[str, Any]:
    """A deployment with a parameter schema, on a pool of its own (no worker takes its runs)."""
    suffix = uuid.uuid4().hex[:8]
    pool = f"router-{suffix}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201
    response = await api.post(
        "/api/deployments",
        json={
            "name": f"d-{suffix}",
            "flow_name": f"process-order-{suffix}",
            "entrypoint": "orders.py:process_order",
            "work_pool_name": pool,
            "parameter_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
                "required": ["order_id"],
            },
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def create_automation(
    api: httpx.AsyncClient, ctx: ServerContext, body: dict[str, Any]
) -> dict[str, Any]:
    """Create it and wait until every running router has it in its index."""
    response = await api.post("/api/automations", json=body)
    assert response.status_code == 201, response.text
    automation: dict[str, Any] = response.json()
    await in_every_index(ctx, automation["revision"])
    return automation


async def in_every_index(ctx: ServerContext, revision: int) -> None:
    async def synced() -> bool:
        behind = await ctx.pool.fetchval(
            """SELECT count(*) FROM router_replicas
               WHERE heartbeat > now() - interval '10 seconds' AND revision < $1""",
            revision,
        )
        return bool(behind == 0)

    await eventually(synced, what=f"every router at revision {revision}")


async def firings(ctx: ServerContext, automation_id: str) -> list[dict[str, Any]]:
    rows = await ctx.pool.fetch(
        "SELECT * FROM firings WHERE automation_id = $1 ORDER BY created", uuid.UUID(automation_id)
    )
    return [dict(r) for r in rows]


async def runs_of(ctx: ServerContext, deployment_id: str) -> list[dict[str, Any]]:
    rows = await ctx.pool.fetch(
        "SELECT * FROM flow_runs WHERE deployment_id = $1 ORDER BY created", uuid.UUID(deployment_id)
    )
    return [dict(r) for r in rows]


def order_event(order: str, total: float = 18.5, name: str = "order.created", **extra: Any) -> dict[str, Any]:
    return {
        "event": name,
        "resource": {"baton.resource.id": f"shop.order.{order}", **extra},
        "payload": {"total": total},
    }


def run_action(deployment: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    return {"type": "run-deployment", "deployment": deployment["id"], "parameters": parameters}


def unique_name() -> str:
    return f"auto-{uuid.uuid4().hex[:8]}"


async def quiet(router: RouterService) -> None:
    """Wait until the router has taken every message and applied what it took."""

    async def drained() -> bool:
        return not router.consumer._inflight and not router.applier.pending

    await eventually(drained, what="the router idle")


async def applied(ctx: ServerContext, channel: Channel, *events: dict[str, Any]) -> None:
    """Publish events that some automation names, one after another, and wait until the router
    has committed their effects (each event's id is recorded in the transaction that counts it)."""
    for event in events:
        await publish(channel, event)
    ids = [uuid.UUID(e["id"]) for e in events]

    async def recorded() -> bool:
        found = await ctx.pool.fetchval(
            "SELECT count(*) FROM router_events WHERE event_id = ANY($1::uuid[])", ids
        )
        return bool(found == len(ids))

    await eventually(recorded, what=f"the router applied {len(ids)} events")
