"""Work pools, deployments, dispatch to pool queues, limits at claim, cancellation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractQueue
from pydantic import ValidationError

from baton_schemas import utcnow
from baton_schemas.envelopes import (
    Claim,
    ControlMessage,
    DeadLetterHeaders,
    FlowRunDispatch,
    Heartbeat,
    WorkerInfo,
)
from baton_schemas.states import Cancelled, Completed, Pending, Running, Verdict
from baton_schemas.topology import CONTROL, DEAD_QUEUE, RUNS, pool_queue_name
from baton_server.context import ServerContext
from baton_server.scheduler.service import SchedulerService
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends
from ..support.runs import propose
from ..support.waiting import eventually

PROCESS_TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "default": "python"},
            "env": {"type": "object", "default": {"A": "pool"}},
            "stream_output": {"type": "boolean", "default": True},
        },
    },
}


@pytest.fixture
async def broker(backends: Backends) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        yield await connection.channel()


async def _next(queue: AbstractQueue) -> FlowRunDispatch:
    async def get() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(fail=False)

    message = await eventually(get, what=f"a message on {queue.name}")
    assert message is not None
    await message.ack()
    return FlowRunDispatch.model_validate_json(message.body)


async def _pool(api: httpx.AsyncClient, **fields: object) -> str:
    name = f"pool-{uuid.uuid4().hex[:8]}"
    response = await api.post("/api/work_pools", json={"name": name, "type": "process", **fields})
    assert response.status_code == 201, response.text
    return name


async def _deployment(api: httpx.AsyncClient, pool: str, **fields: object) -> dict:  # type: ignore[type-arg]
    body = {
        "name": "prod",
        "flow_name": f"flow-{uuid.uuid4().hex[:6]}",
        "entrypoint": "flows/hello.py:say_hello",
        "work_pool_name": pool,
        "parameter_schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "times": {"type": "integer", "default": 1}},
            "required": ["name"],
        },
        **fields,
    }
    response = await api.post("/api/deployments", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_pools_and_queues_have_rabbitmq_queues(api: httpx.AsyncClient, broker) -> None:  # type: ignore[no-untyped-def]
    pool = await _pool(api, concurrency_limit=3)
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 409
    created = await api.post(f"/api/work_pools/{pool}/queues", json={"name": "urgent", "priority": 1})
    assert created.status_code == 201
    await api.patch(f"/api/work_pools/{pool}/queues/default", json={"priority": 5})
    queues = (await api.get(f"/api/work_pools/{pool}/queues")).json()
    assert [(q["name"], q["priority"]) for q in queues] == [("urgent", 1), ("default", 5)]
    for name in ("default", "urgent"):  # declared: a passive declare succeeds
        await broker.declare_queue(pool_queue_name(pool, name), passive=True)
    paused = (await api.patch(f"/api/work_pools/{pool}", json={"paused": True})).json()
    assert paused["paused"] is True and paused["concurrency_limit"] == 3
    assert (await api.delete(f"/api/work_pools/{pool}/queues/urgent")).status_code == 204
    with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
        await broker.declare_queue(pool_queue_name(pool, "urgent"), passive=True)
    assert (await api.get("/api/work_pools/nope")).status_code == 404


async def test_deployment_upsert_and_unknown_pool(api: httpx.AsyncClient) -> None:
    pool = await _pool(api)
    first = await _deployment(api, pool, flow_name="upserted", tags=["a"])
    again = await api.post(
        "/api/deployments",
        json={
            "name": "prod",
            "flow_name": "upserted",
            "entrypoint": "x.py:f",
            "work_pool_name": pool,
            "tags": ["b"],
        },
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"] and again.json()["tags"] == ["b"]
    by_name = await api.get("/api/deployments/name/upserted/prod")
    assert by_name.json()["entrypoint"] == "x.py:f"
    unknown = await api.post(
        "/api/deployments",
        json={"name": "prod", "flow_name": "f", "entrypoint": "x.py:f", "work_pool_name": "missing-pool"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "work pool 'missing-pool' does not exist"


async def test_bad_parameters_are_refused_naming_the_field(
    api: httpx.AsyncClient, ctx: ServerContext
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool)
    missing = await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {}})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "parameters", "name"]
    wrong = await api.post(
        f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": "Ford", "times": "many"}}
    )
    assert wrong.json()["detail"][0]["loc"] == ["body", "parameters", "times"]
    async with ctx.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM flow_runs WHERE deployment_id = $1", uuid.UUID(deployment["id"])
            )
            == 0
        )


async def test_a_due_run_is_dispatched_with_its_job(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, broker, ctx: ServerContext
) -> None:
    pool = await _pool(api, base_job_template=PROCESS_TEMPLATE)
    deployment = await _deployment(
        api,
        pool,
        job_variables={"env": {"A": "deployment"}},
        pull_steps=[{"kind": "set_working_directory", "directory": "/tmp"}],
    )
    queue = await broker.declare_queue(pool_queue_name(pool, "default"), passive=True)
    run = (
        await api.post(
            f"/api/deployments/{deployment['id']}/runs",
            json={"parameters": {"name": "Ford"}, "job_variables": {"command": "python3"}},
        )
    ).json()
    dispatch = await _next(queue)
    assert str(dispatch.flow_run_id) == run["id"]
    assert dispatch.entrypoint == "flows/hello.py:say_hello"
    assert dispatch.parameters == {"name": "Ford"}
    # pool defaults < deployment < run
    assert dispatch.job_variables == {"command": "python3", "env": {"A": "deployment"}, "stream_output": True}
    assert dispatch.pull_steps == [{"kind": "set_working_directory", "directory": "/tmp"}]
    assert dispatch.job_template == PROCESS_TEMPLATE


async def test_future_runs_and_paused_pools(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, broker, ctx: ServerContext, scheduler: SchedulerService
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool)
    queue = await broker.declare_queue(pool_queue_name(pool, "default"), passive=True)
    soon = utcnow() + timedelta(seconds=1.5)
    run = (
        await api.post(
            f"/api/deployments/{deployment['id']}/runs",
            json={"parameters": {"name": "later"}, "scheduled_time": soon.isoformat()},
        )
    ).json()
    assert str((await _next(queue)).flow_run_id) == run["id"], "dispatched by the loop when due"
    dispatched_at = await ctx.pool.fetchval(
        "SELECT dispatched_at FROM flow_runs WHERE id = $1", uuid.UUID(run["id"])
    )
    lookahead = timedelta(seconds=ctx.settings.dispatch_lookahead_seconds)
    assert dispatched_at >= soon - lookahead, "not dispatched before its time"

    await api.patch(f"/api/work_pools/{pool}", json={"paused": True})
    held = (
        await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": "held"}})
    ).json()
    # a dispatch pass (this one, and any of the loop's meanwhile) writes no message for it: a
    # dispatched run has its dispatched_version set in the transaction that writes its message
    await scheduler.dispatch_due()
    dispatched = "SELECT dispatched_version FROM flow_runs WHERE id = $1"
    assert await ctx.pool.fetchval(dispatched, uuid.UUID(held["id"])) is None
    assert await queue.get(fail=False) is None
    await api.patch(f"/api/work_pools/{pool}", json={"paused": False})
    assert str((await _next(queue)).flow_run_id) == held["id"]


async def test_limits_are_enforced_at_claim(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, ctx: ServerContext, scheduler: SchedulerService, broker
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool, concurrency={"limit": 2})
    queue = await broker.declare_queue(pool_queue_name(pool, "default"), passive=True)
    runs = [
        (
            await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": str(i)}})
        ).json()
        for i in range(6)
    ]
    # six workers race for six runs: exactly two may hold a slot
    results = await asyncio.gather(
        *(
            propose(ctx, uuid.UUID(r["id"]), Pending(), claim=Claim(worker_id=f"w{i}"))
            for i, r in enumerate(runs)
        )
    )
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.ACCEPT) == 2 and verdicts.count(Verdict.WAIT) == 4
    for _ in runs:  # the dispatches made when the runs were created
        await _next(queue)
    waiting = [r for r in results if r.verdict is Verdict.WAIT]
    assert all(r.state is not None and r.state.name == "AwaitingConcurrencySlot" for r in waiting)
    # a slot frees: the waiting runs are dispatched again and one more can be claimed
    winner = next(r for r, res in zip(runs, results, strict=True) if res.verdict is Verdict.ACCEPT)
    await propose(ctx, uuid.UUID(winner["id"]), Running())
    await propose(ctx, uuid.UUID(winner["id"]), Completed())
    redispatched: set[uuid.UUID] = set()

    async def all_redispatched() -> bool:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            redispatched.add(FlowRunDispatch.model_validate_json(message.body).flow_run_id)
        return {
            uuid.UUID(r["id"]) for r, res in zip(runs, results, strict=True) if res.verdict is Verdict.WAIT
        } <= redispatched

    await eventually(all_redispatched, what="waiting runs dispatched again")
    retry = await propose(ctx, next(iter(redispatched)), Pending(), claim=Claim(worker_id="late"))
    assert retry.verdict is Verdict.ACCEPT, retry


async def test_an_early_claim_told_to_wait_is_dispatched_again(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, ctx: ServerContext, scheduler: SchedulerService, broker
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool)
    queue = await broker.declare_queue(pool_queue_name(pool, "default"), passive=True)
    soon = (utcnow() + timedelta(seconds=2)).isoformat()
    run = (
        await api.post(
            f"/api/deployments/{deployment['id']}/runs",
            json={"parameters": {"name": "x"}, "scheduled_time": soon},
        )
    ).json()
    run_id = uuid.UUID(run["id"])
    async with ctx.pool.acquire() as conn:  # as if its message had gone out early (clock skew)
        await conn.execute("UPDATE flow_runs SET dispatched_version = state_version WHERE id = $1", run_id)
    early = await propose(ctx, run_id, Pending(), claim=Claim(worker_id="eager"))
    assert early.verdict is Verdict.WAIT  # a worker acks and drops this
    second = await _next(queue)
    assert str(second.flow_run_id) == run["id"]
    on_time = await propose(ctx, second.flow_run_id, Pending(), claim=Claim(worker_id="eager"))
    assert on_time.verdict is Verdict.ACCEPT


async def test_cancel_new_collision_strategy(api: httpx.AsyncClient, ctx: ServerContext) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool, concurrency={"limit": 1, "collision_strategy": "cancel-new"})
    first, second = [
        (await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": n}})).json()
        for n in ("a", "b")
    ]
    assert (
        await propose(ctx, uuid.UUID(first["id"]), Pending(), claim=Claim(worker_id="w"))
    ).verdict is Verdict.ACCEPT
    refused = await propose(ctx, uuid.UUID(second["id"]), Pending(), claim=Claim(worker_id="w"))
    assert refused.verdict is Verdict.ABORT
    assert refused.state is not None and refused.state.type.value == "CANCELLED"


async def test_a_stale_claim_cannot_end_a_reclaimed_run(api: httpx.AsyncClient, ctx: ServerContext) -> None:
    run = (
        await api.post("/api/flow_runs", json={"flow_name": "reclaimed", "retry_policy": {"retries": 1}})
    ).json()
    run_id = uuid.UUID(run["id"])
    first_claim = uuid.uuid4()
    await propose(ctx, run_id, Pending(), claim=Claim(worker_id="dead"), transition_id=first_claim)
    async with ctx.pool.acquire() as conn:
        # the first worker died; its run was crashed and rescheduled, and another worker took it
        from baton_schemas.states import Crashed

        await propose(ctx, run_id, Running(), conn=conn)
        await propose(ctx, run_id, Crashed("lease expired"), conn=conn)
    await propose(ctx, run_id, Pending(), claim=Claim(worker_id="alive"))
    from baton_schemas.envelopes import ProposeState
    from baton_server.tracker.transitions import propose_flow_run_state

    async with ctx.pool.acquire() as conn:
        stale = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=run_id, state=Completed(), claim_id=first_claim)
        )
    assert stale.result.verdict is Verdict.ABORT


async def test_cancel_waiting_and_started_runs(api: httpx.AsyncClient, ctx: ServerContext, broker) -> None:  # type: ignore[no-untyped-def]
    waiting = (await api.post("/api/flow_runs", json={"flow_name": "to cancel"})).json()
    result = (await api.post(f"/api/flow_runs/{waiting['id']}/cancel")).json()
    assert result["verdict"] == "ACCEPT" and result["state"]["type"] == "CANCELLED"

    started = (await api.post("/api/flow_runs", json={"flow_name": "to cancel"})).json()
    control = await broker.declare_queue(exclusive=True)
    await control.bind(CONTROL, routing_key=f"flow-run.{started['id']}")
    await propose(ctx, uuid.UUID(started["id"]), Running())
    result = (await api.post(f"/api/flow_runs/{started['id']}/cancel")).json()
    assert result["state"]["type"] == "CANCELLING"
    message = await eventually(lambda: control.get(fail=False), what="the cancel request")
    assert str(ControlMessage.model_validate_json(message.body).flow_run_id) == started["id"]
    beat = await api.post("/api/flow_runs/heartbeat", json={"flow_run_ids": [started["id"], waiting["id"]]})
    assert beat.json()["cancelling"] == [started["id"]], "an engine without a worker learns it this way"
    # only Cancelled ends it
    assert (await propose(ctx, uuid.UUID(started["id"]), Completed())).verdict is Verdict.REJECT
    assert (await propose(ctx, uuid.UUID(started["id"]), Cancelled())).verdict is Verdict.ACCEPT
    assert (await api.post(f"/api/flow_runs/{uuid.uuid4()}/cancel")).status_code == 404


async def test_workers_show_online_then_offline(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, tracker: TrackerService, backends: Backends
) -> None:
    pool = await _pool(api)
    worker_id = f"worker-{uuid.uuid4().hex[:6]}"
    heartbeat = Heartbeat(
        worker_id=worker_id, worker=WorkerInfo(name="w1", pool_name=pool, slots=4), interval_seconds=0.2
    )
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("baton.tracker")
        await exchange.publish(aio_pika.Message(heartbeat.to_json()), routing_key="tracker")

    async def listed(online: bool) -> bool:
        workers = (await api.get(f"/api/work_pools/{pool}/workers")).json()
        return bool(workers) and workers[0]["online"] is online

    await eventually(lambda: listed(True), what="the worker online")
    await eventually(lambda: listed(False), what="the worker offline after 3 missed heartbeats")


async def test_an_unroutable_dispatch_is_parked_not_blocking(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, broker, ctx: ServerContext
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool)
    await broker.queue_delete(pool_queue_name(pool, "default"))  # someone deleted it by hand
    run = (
        await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": "x"}})
    ).json()

    async def parked() -> bool:
        dead = await broker.declare_queue(DEAD_QUEUE, passive=True)
        while (message := await dead.get(fail=False)) is not None:
            await message.ack()
            if message.headers.get(DeadLetterHeaders.ORIGINAL_EXCHANGE) != RUNS:
                continue  # other tests' dead letters (poison events, say) share the queue
            try:
                dispatch = FlowRunDispatch.model_validate_json(message.body)
            except ValidationError:
                continue  # a poison dispatch another test parked
            if dispatch.flow_run_id == uuid.UUID(run["id"]):
                return True
        return False

    await eventually(parked, what="the unroutable dispatch in baton.dead")
    after = (await api.post("/api/flow_runs", json={"flow_name": "after the unroutable one"})).json()
    async with ctx.pool.acquire() as conn:
        await eventually(lambda: _outbox_empty(conn), what="the outbox to drain past the parked message")
    assert after["id"]


async def _outbox_empty(conn) -> bool:  # type: ignore[no-untyped-def]
    return int(await conn.fetchval("SELECT count(*) FROM outbox")) == 0


async def test_a_dispatch_that_never_led_to_a_claim_is_sent_again(  # type: ignore[no-untyped-def]
    api: httpx.AsyncClient, ctx: ServerContext, scheduler: SchedulerService, broker
) -> None:
    pool = await _pool(api)
    deployment = await _deployment(api, pool, tags=["nightly"])
    queue = await broker.declare_queue(pool_queue_name(pool, "default"), passive=True)
    run = (
        await api.post(f"/api/deployments/{deployment['id']}/runs", json={"parameters": {"name": "x"}})
    ).json()
    first = await _next(queue)
    assert first.tags == ["nightly"] and first.run_count == 0
    async with ctx.pool.acquire() as conn:  # its message was dead-lettered long ago; nobody claimed it
        await conn.execute(
            "UPDATE flow_runs SET dispatched_at = now() - interval '1 hour' WHERE id = $1",
            uuid.UUID(run["id"]),
        )
    again = await _next(queue)
    assert again.flow_run_id == first.flow_run_id and again.id != first.id


async def test_later_transitions_keep_the_claims_lease(api: httpx.AsyncClient, ctx: ServerContext) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "long lease"})).json()
    run_id = uuid.UUID(run["id"])
    await propose(ctx, run_id, Pending(), claim=Claim(worker_id="w", lease_seconds=120))
    await propose(ctx, run_id, Running())
    async with ctx.pool.acquire() as conn:
        expires = await conn.fetchval("SELECT lease_expires_at FROM flow_runs WHERE id = $1", run_id)
    assert expires > utcnow() + timedelta(seconds=100), "Running kept the 120 s lease, not the default"
