"""Each action kind against real objects, through the router in the test process: cancel a flow
run (the event's, or a named one), pause and resume a deployment, its schedules, a work pool, a
work queue and an automation, emit an event (that another automation reacts to), call a
webhook that fails before it works; and every firing announced as
`baton.automation.triggered` on `baton.events`."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from baton._amqp import Channel
from baton_schemas.topology import EVENTS
from baton_server.context import ServerContext
from baton_server.router.service import RouterService

from ...support.backends import Backends
from ...support.waiting import eventually
from .conftest import applied, create_automation, firings, in_every_index, run_action, runs_of, unique_name


def _event(name: str, resource: str = "ops.1", *related: str, **payload: Any) -> dict[str, Any]:
    return {
        "event": name,
        "resource": {"baton.resource.id": resource},
        "related": [{"baton.resource.id": r, "baton.resource.role": r.split(".")[1]} for r in related],
        "payload": payload,
    }


async def _automation(
    api: httpx.AsyncClient, ctx: ServerContext, expect: str, *actions: dict[str, Any]
) -> dict[str, Any]:
    return await create_automation(
        api, ctx, {"name": unique_name(), "trigger": {"expect": [expect]}, "actions": list(actions)}
    )


async def _one_firing(ctx: ServerContext, automation: dict[str, Any]) -> dict[str, Any]:
    [fired] = await eventually(lambda: firings(ctx, automation["id"]), what=f"{automation['name']} fired")
    return fired


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


async def test_cancel_flow_run_the_events_own_and_a_named_one(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    s = _suffix()
    runs = []
    for _ in range(3):
        made = await api.post(
            f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"order_id": "c"}}
        )
        assert made.status_code == 201, made.text
        runs.append(made.json())
    own = await _automation(api, ctx, f"ops-{s}.stop", {"type": "cancel-flow-run"})
    named = await _automation(
        api, ctx, f"ops-{s}.stop-named", {"type": "cancel-flow-run", "flow_run": "{{ event.payload.run }}"}
    )
    await applied(
        ctx,
        channel,
        _event(f"ops-{s}.stop", "ops.1", f"baton.flow-run.{runs[0]['id']}"),
        _event(f"ops-{s}.stop-named", run=runs[1]["id"]),
    )
    states = {str(r["id"]): r["state_type"] for r in await runs_of(ctx, deployment["id"])}
    assert states == {runs[0]["id"]: "CANCELLED", runs[1]["id"]: "CANCELLED", runs[2]["id"]: "SCHEDULED"}
    for automation, run in ((own, runs[0]), (named, runs[1])):
        fired = await _one_firing(ctx, automation)
        assert fired["ok"] is True and run["id"] in fired["actions"][0]["detail"]


async def test_cancel_flow_run_of_a_run_that_does_not_exist_records_a_failed_firing(
    api: httpx.AsyncClient, ctx: ServerContext, router: RouterService, channel: Channel
) -> None:
    s = _suffix()
    automation = await _automation(
        api, ctx, f"ops-{s}.stop", {"type": "cancel-flow-run", "flow_run": "{{ event.payload.run }}"}
    )
    await applied(ctx, channel, _event(f"ops-{s}.stop", run=str(uuid.uuid4())))
    fired = await _one_firing(ctx, automation)
    assert fired["ok"] is False and "does not exist" in fired["actions"][0]["detail"]
    # the router carries on: the next event is applied
    await applied(ctx, channel, _event(f"ops-{s}.stop", run="not-an-id"))
    assert len(await firings(ctx, automation["id"])) == 2


async def test_pause_and_resume_a_deployment_named_or_related(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    s = _suffix()
    await _automation(
        api, ctx, f"ops-{s}.pause", {"type": "pause-deployment", "deployment": deployment["id"]}
    )
    await _automation(api, ctx, f"ops-{s}.resume", {"type": "resume-deployment"})  # the event's

    async def paused() -> bool:
        got = await api.get(f"/api/deployments/{deployment['id']}")
        return bool(got.json()["paused"])

    await applied(ctx, channel, _event(f"ops-{s}.pause"))
    assert await paused() is True
    await applied(ctx, channel, _event(f"ops-{s}.resume", "ops.1", f"baton.deployment.{deployment['id']}"))
    assert await paused() is False


async def test_pause_and_resume_a_work_pool(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    s, pool = _suffix(), deployment["work_pool_name"]
    await _automation(api, ctx, f"ops-{s}.pause", {"type": "pause-work-pool", "work_pool": pool})
    await _automation(api, ctx, f"ops-{s}.resume", {"type": "resume-work-pool"})
    assert (await api.post("/api/work_pools", json={"name": f"gone-{s}"})).status_code == 201
    gone = await _automation(api, ctx, f"ops-{s}.gone", {"type": "pause-work-pool", "work_pool": f"gone-{s}"})
    assert (await api.delete(f"/api/work_pools/gone-{s}")).status_code == 204  # vanished since

    async def paused() -> bool:
        return bool((await api.get(f"/api/work_pools/{pool}")).json()["paused"])

    await applied(ctx, channel, _event(f"ops-{s}.pause"))
    assert await paused() is True
    await applied(ctx, channel, _event(f"ops-{s}.resume", "ops.1", f"baton.work-pool.{pool}"))
    assert await paused() is False
    await applied(ctx, channel, _event(f"ops-{s}.gone"))
    fired = await _one_firing(ctx, gone)
    assert fired["ok"] is False and "does not exist" in fired["actions"][0]["detail"]


async def test_pause_and_resume_schedules_one_or_all(
    api: httpx.AsyncClient, ctx: ServerContext, router: RouterService, channel: Channel
) -> None:
    s = _suffix()
    pool = f"sched-{s}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201
    made = await api.post(
        "/api/deployments",
        json={
            "name": "nightly",
            "flow_name": f"etl-{s}",
            "entrypoint": "etl.py:etl",
            "work_pool_name": pool,
            "schedules": [
                {"slug": "hourly", "schedule": {"kind": "interval", "interval_seconds": 3600}},
                {"slug": "daily", "schedule": {"kind": "interval", "interval_seconds": 86400}},
            ],
        },
    )
    assert made.status_code == 201, made.text
    deployment = made.json()
    await _automation(
        api,
        ctx,
        f"ops-{s}.pause-one",
        {"type": "pause-schedule", "deployment": deployment["id"], "schedule": "daily"},
    )
    await _automation(
        api, ctx, f"ops-{s}.pause-all", {"type": "pause-schedule", "deployment": deployment["id"]}
    )
    await _automation(api, ctx, f"ops-{s}.resume-all", {"type": "resume-schedule"})  # the event's deployment
    missing = await _automation(
        api,
        ctx,
        f"ops-{s}.missing",
        {"type": "pause-schedule", "deployment": deployment["id"], "schedule": "weekly"},
    )

    async def active() -> dict[str, bool]:
        listed = (await api.get(f"/api/deployments/{deployment['id']}/schedules")).json()
        return {item["slug"]: item["active"] for item in listed}

    await applied(ctx, channel, _event(f"ops-{s}.pause-one"))
    assert await active() == {"hourly": True, "daily": False}
    await applied(ctx, channel, _event(f"ops-{s}.pause-all"))
    assert await active() == {"hourly": False, "daily": False}
    await applied(
        ctx, channel, _event(f"ops-{s}.resume-all", "ops.1", f"baton.deployment.{deployment['id']}")
    )
    assert await active() == {"hourly": True, "daily": True}
    await applied(ctx, channel, _event(f"ops-{s}.missing"))
    fired = await _one_firing(ctx, missing)
    assert fired["ok"] is False and "no schedule 'weekly'" in fired["actions"][0]["detail"]


async def test_pause_and_resume_a_work_queue_named_or_related(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    s, pool = _suffix(), deployment["work_pool_name"]
    made = await api.post(f"/api/work_pools/{pool}/queues", json={"name": f"q-{s}"})
    assert made.status_code == 201, made.text
    await _automation(
        api, ctx, f"ops-{s}.pause", {"type": "pause-work-queue", "work_pool": pool, "work_queue": f"q-{s}"}
    )
    await _automation(api, ctx, f"ops-{s}.resume", {"type": "resume-work-queue"})  # the event's queue
    bad = {"type": "pause-work-queue", "work_pool": pool, "work_queue": f"none-{s}"}
    refused = await api.post(
        "/api/automations", json={"name": unique_name(), "trigger": {"expect": ["x"]}, "actions": [bad]}
    )
    assert refused.status_code == 422 and "actions" in refused.text and "work_queue" in refused.text

    async def paused() -> bool:
        queues = (await api.get(f"/api/work_pools/{pool}/queues")).json()
        return bool(next(q for q in queues if q["name"] == f"q-{s}")["paused"])

    await applied(ctx, channel, _event(f"ops-{s}.pause"))
    assert await paused() is True
    related = (f"baton.work-pool.{pool}", f"baton.work-queue.{pool}.q-{s}")
    await applied(ctx, channel, _event(f"ops-{s}.resume", "ops.1", *related))
    assert await paused() is False


async def test_pause_and_resume_an_automation(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    s = _suffix()
    target = await _automation(api, ctx, f"ops-{s}.work", run_action(deployment, order_id="w"))
    await _automation(api, ctx, f"ops-{s}.pause", {"type": "pause-automation", "automation": target["name"]})
    await _automation(
        api, ctx, f"ops-{s}.resume", {"type": "resume-automation", "automation": target["name"]}
    )

    async def enabled() -> bool:
        return bool((await api.get(f"/api/automations/{target['name']}")).json()["enabled"])

    await applied(ctx, channel, _event(f"ops-{s}.pause"))
    assert await enabled() is False
    await applied(ctx, channel, _event(f"ops-{s}.resume"))
    assert await enabled() is True
    revision = (await api.get(f"/api/automations/{target['name']}")).json()["revision"]
    await in_every_index(ctx, revision)  # the router follows the change
    await applied(ctx, channel, _event(f"ops-{s}.work"))
    [run] = await runs_of(ctx, deployment["id"])
    assert run["parameters"] == {"order_id": "w"}


@pytest.fixture
async def announcements(backends: Backends) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A subscriber's own queue on `baton.events`, bound to the router's announcements."""
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key="baton.automation.#")
        yield queue


async def _announced(queue: aio_pika.abc.AbstractQueue, automation_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            body: dict[str, Any] = orjson.loads(message.body)
            if body["resource"]["baton.resource.id"] == f"baton.automation.{automation_id}":
                return body
        return None

    got = await eventually(found, what="the firing announced")
    assert got is not None
    return got


async def test_emit_event_is_seen_by_another_automation_and_firings_are_announced(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
    announcements: aio_pika.abc.AbstractQueue,
) -> None:
    s = _suffix()
    emit = {
        "type": "emit-event",
        "event": f"chain-{s}.next",
        "resource": {"baton.resource.id": "chain.{{ event.payload.order }}"},
        "payload": {"order": "{{ event.payload.order }}", "doubled": "{{ event.payload.total * 2 }}"},
    }
    first = await _automation(api, ctx, f"chain-{s}.start", emit)
    second = await _automation(
        api,
        ctx,
        f"chain-{s}.next",
        run_action(deployment, order_id="{{ event.payload.order }}", total="{{ event.payload.doubled }}"),
    )
    start = _event(f"chain-{s}.start", order="o-7", total=21)
    await applied(ctx, channel, start)
    [run] = await eventually(lambda: runs_of(ctx, deployment["id"]), what="the chained run")
    assert run["parameters"] == {"order_id": "o-7", "total": 42}
    fired = await _one_firing(ctx, first)
    assert fired["ok"] is True and f"chain-{s}.next" in fired["actions"][0]["detail"]
    announced = await _announced(announcements, first["id"])
    assert announced["event"] == "baton.automation.triggered"
    assert announced["payload"]["firing_id"] == str(fired["id"])
    assert announced["payload"]["event_ids"] == [start["id"]]
    assert announced["payload"]["actions"][0]["type"] == "emit-event"
    assert announced["payload"]["actions"][0]["ok"] is True
    second_fired = await _one_firing(ctx, second)
    announced_second = await _announced(announcements, second["id"])
    assert announced_second["payload"]["actions"][0]["flow_run_id"] == str(run["id"])
    assert second_fired["actions"][0]["flow_run_id"] == str(run["id"])


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first two requests, then 204; records each request's headers."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append(dict(self.headers))
        self.send_response(503 if len(self.seen) <= 2 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Flaky", (_Flaky,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_call_webhook_retries_a_failing_receiver_with_one_idempotency_key(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    flaky: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = flaky
    s = _suffix()
    hook = {
        "type": "call-webhook",
        "url": url,
        "body": '{"e": "{{ event.event }}"}',
        "retries": 3,
        "timeout": 5,
    }
    automation = await _automation(api, ctx, f"hook-{s}.go", hook)
    await applied(ctx, channel, _event(f"hook-{s}.go"))

    async def done() -> dict[str, Any] | None:
        [fired] = await firings(ctx, automation["id"])
        return fired if fired["ok"] is not None else None

    fired = await eventually(done, timeout=30, what="the webhook's outcome recorded")
    assert fired is not None and fired["ok"] is True and fired["actions"][0]["detail"].endswith(": 204")
    assert len(seen) == 3  # two 503s, then the one that worked
    assert len({h["Idempotency-Key"] for h in seen}) == 1 and seen[0]["Idempotency-Key"].endswith(":0")
    assert await ctx.pool.fetchval("SELECT count(*) FROM firing_calls WHERE firing_id = $1", fired["id"]) == 0
