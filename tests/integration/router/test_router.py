"""The router in the test process against the run's database and vhost: events published over
raw AMQP fire automations; windows, keys and exactly-once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from baton._amqp import Channel, Properties
from baton_schemas.topology import EVENTS
from baton_server.context import ServerContext
from baton_server.router import buckets
from baton_server.router.service import RouterService

from ...support.waiting import eventually
from .conftest import (
    create_automation,
    firings,
    order_event,
    publish,
    quiet,
    run_action,
    runs_of,
    unique_name,
)


async def test_an_amqp_event_starts_a_run_with_templated_typed_parameters(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": ["order.created"], "match": {"baton.resource.id": "shop.order.*"}},
            "actions": [
                run_action(
                    deployment,
                    order_id="{{ event.resource['baton.resource.id'].split('.')[-1] }}",
                    total="{{ event.payload.total }}",
                )
            ],
        },
    )
    await publish(channel, order_event("not-matched") | {"resource": {"baton.resource.id": "other.1"}})
    await publish(channel, order_event("42", 18.5))
    [run] = await eventually(lambda: runs_of(ctx, deployment["id"]), what="a run")
    assert run["parameters"] == {"order_id": "42", "total": 18.5}
    [firing] = await firings(ctx, automation["id"])
    assert run["idempotency_key"] == f"trigger:{automation['id']}:{firing['key']}:0"
    assert firing["ok"] is True and firing["actions"][0]["flow_run_id"] == str(run["id"])
    # it was dispatched in the transaction that made it: its outbox row is the dispatch
    assert run["state_type"] == "SCHEDULED"


async def test_reactive_threshold_within_the_window_and_for_each_keys(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {
                "expect": ["order.paid"],
                "for_each": ["baton.resource.id"],
                "threshold": 3,
                "within": "1h",
            },
            "actions": [run_action(deployment, order_id="{{ event.resource['baton.resource.id'] }}")],
        },
    )
    for _ in range(2):
        await publish(channel, order_event("a", name="order.paid"))
        await publish(channel, order_event("b", name="order.paid"))
    await quiet(router)
    assert await firings(ctx, automation["id"]) == []  # two each: under the threshold
    await publish(channel, order_event("a", name="order.paid"))
    [fired] = await eventually(lambda: firings(ctx, automation["id"]), what="a firing for key a")
    assert fired["bucket_key"] == "shop.order.a" and len(fired["event_ids"]) == 3
    await quiet(router)
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": "shop.order.a"}


async def test_redelivered_copies_fire_once_and_count_once(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": ["order.refunded"], "threshold": 2, "within": "1h"},
            "actions": [run_action(deployment, order_id="r"), run_action(deployment, order_id="s")],
        },
    )
    event = order_event("1", name="order.refunded")
    event["id"] = str(uuid.uuid4())
    for _ in range(3):  # one event, three copies: counts once, under the threshold
        await publish(channel, dict(event))
    await quiet(router)
    assert await firings(ctx, automation["id"]) == []
    second = order_event("2", name="order.refunded")
    second["id"] = str(uuid.uuid4())
    for _ in range(3):
        await publish(channel, dict(second))
    await eventually(lambda: firings(ctx, automation["id"]), what="the firing")
    await quiet(router)
    assert len(await firings(ctx, automation["id"])) == 1
    runs = await runs_of(ctx, deployment["id"])
    assert sorted(r["parameters"]["order_id"] for r in runs) == ["r", "s"]  # two actions, once each


async def test_proactive_fires_on_silence_and_stays_quiet_when_the_event_comes(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {
                "posture": "Proactive",
                "after": ["etl.started"],
                "expect": ["etl.done"],
                "for_each": ["baton.resource.id"],
                "within": "5s",
            },
            "actions": [run_action(deployment, order_id="{{ event.resource['baton.resource.id'] }} is late")],
        },
    )
    await publish(channel, {"event": "etl.started", "resource": {"baton.resource.id": "etl.quiet"}})
    await publish(channel, {"event": "etl.started", "resource": {"baton.resource.id": "etl.ontime"}})
    await publish(channel, {"event": "etl.done", "resource": {"baton.resource.id": "etl.ontime"}})
    [fired] = await eventually(lambda: firings(ctx, automation["id"]), timeout=30, what="the silence fired")
    assert fired["bucket_key"] == "etl.quiet"
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": "etl.quiet is late"}
    # the late event resolves it
    await publish(channel, {"event": "etl.done", "resource": {"baton.resource.id": "etl.quiet"}})

    async def resolved() -> bool:
        return [f["kind"] for f in await firings(ctx, automation["id"])] == ["triggered", "resolved"]

    await eventually(resolved, what="the resolution")
    remaining = await ctx.pool.fetchval(
        "SELECT count(*) FROM trigger_buckets WHERE automation_id = $1", uuid.UUID(automation["id"])
    )
    assert remaining == 0


async def test_invalid_rendered_parameters_record_a_failed_firing_and_no_run(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": ["order.voided"]},
            "actions": [run_action(deployment, order_id="{{ event.payload.total }}")],  # a number
        },
    )
    await publish(channel, order_event("v", name="order.voided"))
    [fired] = await eventually(lambda: firings(ctx, automation["id"]), what="the firing")
    assert fired["ok"] is False and "invalid parameters" in fired["actions"][0]["detail"]
    assert await runs_of(ctx, deployment["id"]) == []
    # a template escaping the sandbox fails the same way
    escape = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": ["order.escaped"]},
            "actions": [run_action(deployment, order_id="{{ ''.__class__.__mro__ }}")],
        },
    )
    await publish(channel, order_event("e", name="order.escaped"))
    [blocked] = await eventually(lambda: firings(ctx, escape["id"]), what="the blocked firing")
    assert blocked["ok"] is False and "unsafe" in blocked["actions"][0]["detail"]


async def test_two_routers_fire_once(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    second = RouterService(ctx)
    await second.start()
    try:
        automation = await create_automation(
            api,
            ctx,
            {
                "name": unique_name(),
                "trigger": {"expect": ["order.shipped"], "for_each": ["baton.resource.id"], "threshold": 5},
                "actions": [run_action(deployment, order_id="{{ event.resource['baton.resource.id'] }}")],
            },
        )
        events = [order_event(str(n % 10), name="order.shipped") for n in range(200)]
        for event in events:
            event["id"] = str(uuid.uuid4())
        await asyncio.gather(*(publish(channel, dict(e)) for e in events + events))  # each twice

        async def all_fired() -> bool:
            return len(await firings(ctx, automation["id"])) >= 40

        # a bound, not a speed target: 400 deliveries over two routers on a loaded CI machine
        await eventually(all_fired, timeout=90, what="40 firings")
        await quiet(router)
        await quiet(second)
        assert len(await firings(ctx, automation["id"])) == 40  # 20 per key, 5 each: 4 per key
        runs = await runs_of(ctx, deployment["id"])
        assert len(runs) == 40 and len({r["idempotency_key"] for r in runs}) == 40
        assert router.consumer.matched and second.consumer.matched  # both took a share
    finally:
        await second.stop()


async def test_a_window_deleted_while_another_router_waits_for_it_is_placed_again(
    api: httpx.AsyncClient, ctx: ServerContext, deployment: dict[str, Any]
) -> None:
    """The interleaving behind a lost count: router A holds a window, router B waits for its
    lock, A fires it (deleting the row) and commits. B must still get the window to count in."""
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": ["order.shipped"], "threshold": 2},
            "actions": [run_action(deployment, order_id="x")],
        },
    )
    key = (uuid.UUID(automation["id"]), "", "")
    async with ctx.pool.acquire() as first, ctx.pool.acquire() as second:
        await buckets.lock(first, {key: False})  # on its own, committed: the row exists
        holder = first.transaction()
        await holder.start()
        held = await buckets.lock(first, {key: False})
        waiter = second.transaction()
        await waiter.start()
        waiting = asyncio.create_task(buckets.lock(second, {key: False}))

        async def blocked() -> bool:
            return bool(
                await ctx.pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%FOR UPDATE OF b%'"
                )
            )

        await eventually(blocked, what="the second lock waiting on the first")
        held[key].clear()  # fired: not kept, so written back as a DELETE
        await buckets.write(first, held)
        await holder.commit()
        got = await asyncio.wait_for(waiting, 10)
        await waiter.rollback()
    assert key in got and got[key].count == 0


async def test_labels_decide_before_and_after_validation_alike(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    """The router rules out an event on its labels as sent, before validating it; a CloudEvent,
    whose labels exist only once converted, is judged after conversion."""
    suffix = uuid.uuid4().hex[:8]
    automation = await create_automation(
        api,
        ctx,
        {
            "name": unique_name(),
            "trigger": {"expect": [f"shop-{suffix}.paid"], "match": {"baton.resource.id": "/shop*"}},
            "actions": [run_action(deployment, order_id="{{ event.resource['cloudevents.id'] }}")],
        },
    )
    await publish(channel, order_event("1", name=f"shop-{suffix}.paid"))  # shop.order.1: no
    headers = {
        "cloudEvents:specversion": "1.0",
        "cloudEvents:type": f"shop-{suffix}.paid",
        "cloudEvents:source": "/shop",
        "cloudEvents:id": f"ce-{suffix}",
    }
    props = Properties(content_type="application/json", headers=headers, message_id=str(uuid.uuid4()))
    confirm = channel.publish(EVENTS, f"shop-{suffix}.paid", b'{"total": 3}', props, mandatory=True)
    assert confirm is not None
    await confirm
    [fired] = await eventually(lambda: firings(ctx, automation["id"]), what="the CloudEvent fired")
    assert fired["ok"] is True
    await quiet(router)
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": f"ce-{suffix}"}
    assert len(await firings(ctx, automation["id"])) == 1
