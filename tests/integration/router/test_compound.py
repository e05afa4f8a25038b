"""Compound (any, all, n of) and sequence triggers, through the router in the test process: child
triggers' firings are counted in their parent's window in PostgreSQL, and only the parent's
firing performs the actions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from baton._amqp import Channel
from baton_server.context import ServerContext
from baton_server.router.service import RouterService

from ...support.waiting import eventually
from .conftest import applied, create_automation, firings, publish, run_action, runs_of, unique_name


def _names(*steps: str) -> list[str]:
    """Event names of this test alone (the session's router holds every test's automations)."""
    suffix = uuid.uuid4().hex[:8]
    return [f"step-{suffix}.{s}" for s in steps]


def _children(names: list[str]) -> list[dict[str, Any]]:
    return [{"expect": [name]} for name in names]


async def _send(ctx: ServerContext, channel: Channel, *names: str) -> None:
    """Publish one after another (the router sees them in this order); wait until applied."""
    await applied(ctx, channel, *({"event": n, "resource": {"baton.resource.id": "job.1"}} for n in names))


async def _count(ctx: ServerContext, automation: dict[str, Any], n: int) -> list[dict[str, Any]]:
    async def reached() -> list[dict[str, Any]] | None:
        found = await firings(ctx, automation["id"])
        return found if len(found) >= n else None

    got = await eventually(reached, what=f"{n} firings of {automation['name']}")
    assert got is not None
    return got


async def _compound(
    api: httpx.AsyncClient, ctx: ServerContext, deployment: dict[str, Any], trigger: dict[str, Any]
) -> dict[str, Any]:
    return await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": trigger,
            "actions": [run_action(deployment, order_id="{{ event.event }}")],
        },
    )


async def test_compound_all_fires_once_every_child_fired(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    a, b = _names("a", "b")
    automation = await _compound(
        api,
        ctx,
        deployment,
        {"type": "compound", "require": "all", "within": "1h", "triggers": _children([a, b])},
    )
    await _send(ctx, channel, a, a)  # the first child twice: still one child of two
    assert await firings(ctx, automation["id"]) == []
    await _send(ctx, channel, b)
    [fired] = await _count(ctx, automation, 1)
    assert fired["trigger_path"] == "" and len(fired["event_ids"]) >= 2
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": b}  # the event that completed it
    # the window started over: b alone does not fire again
    await _send(ctx, channel, b)
    assert len(await firings(ctx, automation["id"])) == 1


async def test_compound_any_fires_on_each_child(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    a, b, other = _names("a", "b", "other")
    automation = await _compound(
        api, ctx, deployment, {"type": "compound", "require": "any", "triggers": _children([a, b])}
    )
    await publish(channel, {"event": other, "resource": {"baton.resource.id": "job.1"}})
    await _send(ctx, channel, b, a)
    await _count(ctx, automation, 2)
    runs = await runs_of(ctx, deployment["id"])
    assert sorted(r["parameters"]["order_id"] for r in runs) == sorted([a, b])
    assert len(await firings(ctx, automation["id"])) == 2  # not the other event


async def test_compound_n_of_fires_when_n_children_fired(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    a, b, c = _names("a", "b", "c")
    automation = await _compound(
        api,
        ctx,
        deployment,
        {"type": "compound", "require": 2, "within": "1h", "triggers": _children([a, b, c])},
    )
    await _send(ctx, channel, c, c, c)  # one child, however often, is one of the two needed
    assert await firings(ctx, automation["id"]) == []
    await _send(ctx, channel, a)
    await _count(ctx, automation, 1)
    assert len(await runs_of(ctx, deployment["id"])) == 1


async def test_compound_children_with_thresholds_count_in_postgres(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    """A child is itself a windowed trigger: it fires its parent only at its own threshold."""
    a, b = _names("a", "b")
    automation = await _compound(
        api,
        ctx,
        deployment,
        {
            "type": "compound",
            "require": "all",
            "triggers": [{"expect": [a], "threshold": 3, "within": "1h"}, {"expect": [b]}],
        },
    )
    await _send(ctx, channel, b, a, a)
    assert await firings(ctx, automation["id"]) == []
    child = await ctx.pool.fetchrow(
        "SELECT count FROM trigger_buckets WHERE automation_id = $1 AND trigger_path = '0'",
        uuid.UUID(automation["id"]),
    )
    assert child is not None and child["count"] == 2
    await _send(ctx, channel, a)
    await _count(ctx, automation, 1)


async def test_sequence_fires_in_order_and_ignores_steps_out_of_order(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    a, b, c = _names("a", "b", "c")
    automation = await _compound(
        api, ctx, deployment, {"type": "sequence", "within": "1h", "triggers": _children([a, b, c])}
    )
    await _send(ctx, channel, c, b, a, c)  # only `a` starts it; c before b is out of order
    assert await firings(ctx, automation["id"]) == []
    assert await runs_of(ctx, deployment["id"]) == []
    await _send(ctx, channel, b, c)  # a, b, c in order now
    [fired] = await _count(ctx, automation, 1)
    assert fired["ok"] is True
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": c}
    # it started over: b and c without a new a are out of order
    await _send(ctx, channel, b, c)
    assert len(await firings(ctx, automation["id"])) == 1
