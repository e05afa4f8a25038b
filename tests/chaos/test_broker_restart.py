"""RabbitMQ stops and starts while transitions are being made.

The tracker must consume again by itself, and every committed state change must reach
`baton.states` once the broker is back (the outbox drains).
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from baton_schemas.envelopes import Logs, StateChange
from baton_schemas.logs import LogRecord
from baton_schemas.states import Completed, Pending, Running
from baton_schemas.topology import STATES, TRACKER, TRACKER_ROUTING_KEY
from baton_server.context import ServerContext
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.runs import new_run, propose
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos


async def _broker_up(url: str) -> bool:
    try:
        connection = await aio_pika.connect(url, timeout=2)
    except Exception:
        return False
    await connection.close()
    return True


async def _waiting_in_outbox(ctx: ServerContext, *, older_than: float) -> bool:
    async with ctx.pool.acquire() as conn:
        query = "SELECT count(*) FROM outbox WHERE created < now() - make_interval(secs => $1)"
        return bool(await conn.fetchval(query, older_than))


async def test_outbox_drains_and_tracker_resumes_after_broker_restart(
    chaos_ctx: ServerContext,
    chaos_tracker: TrackerService,
    chaos_backends: Backends,
    private_mq: PrivateRabbitMQ,
) -> None:
    ctx, backends = chaos_ctx, chaos_backends
    flow = f"chaos-{uuid.uuid4().hex[:6]}"
    # a subscriber's durable queue: it survives the restart and holds what was routed to it
    queue_name = f"subscriber-{flow}"
    setup = await aio_pika.connect(backends.broker_url)
    async with setup:
        channel = await setup.channel()
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(STATES, routing_key="flow-run.#")

    stop = asyncio.Event()
    made: list[uuid.UUID] = []

    async def keep_transitioning() -> None:
        while not stop.is_set():
            try:
                run = await new_run(ctx, flow=flow)
                made.append(run.id)
                for state in (Pending(), Running(), Completed()):
                    await propose(ctx, run.id, state)
            except Exception:  # PostgreSQL is up; nothing here touches the broker synchronously
                raise
            await asyncio.sleep(0.02)

    worker = asyncio.create_task(keep_transitioning())
    await eventually(lambda: _made_some(made, 5), what="transitions before the restart")
    await asyncio.to_thread(private_mq.stop_app)
    try:
        # transitions keep committing while the broker is away, and their messages wait in the
        # outbox past the sweeper's age: the relay, not the publish after commit, must send them
        during = len(made) + 5
        await eventually(lambda: _made_some(made, during), timeout=30, what="transitions while it is away")
        await eventually(lambda: _waiting_in_outbox(ctx, older_than=1.0), timeout=30, what="unsent rows")
    finally:
        await asyncio.to_thread(private_mq.start_app)
    await eventually(lambda: _broker_up(backends.broker_url), timeout=60, what="RabbitMQ back")
    target = len(made) + 5
    await eventually(lambda: _made_some(made, target), timeout=30, what="transitions after")
    stop.set()
    await worker

    # the tracker consumes again by itself
    marker = LogRecord(message=f"after restart {flow}", flow_run_id=uuid.uuid4())

    async def tracker_consumes() -> bool:
        connection = await aio_pika.connect(backends.broker_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(TRACKER)
            await exchange.publish(
                aio_pika.Message(Logs(logs=[marker]).to_json(), content_type="application/json"),
                routing_key=TRACKER_ROUTING_KEY,
            )
        for _ in range(20):
            async with ctx.pool.acquire() as conn:
                if await conn.fetchval("SELECT count(*) FROM logs WHERE id = $1", marker.id):
                    return True
            await asyncio.sleep(0.1)
        return False

    await eventually(tracker_consumes, timeout=60, interval=0.5, what="the tracker consuming again")

    # every committed state change of these runs reached baton.states
    async with ctx.pool.acquire() as conn:
        committed = {
            r["id"]
            for r in await conn.fetch("SELECT s.id FROM states s WHERE s.flow_run_id = ANY($1::uuid[])", made)
        }
    received: set[uuid.UUID] = set()

    async def all_delivered() -> bool:
        connection = await aio_pika.connect(backends.broker_url)
        async with connection:
            channel = await connection.channel()
            q = await channel.get_queue(queue_name)
            while (message := await q.get(fail=False, timeout=5)) is not None:
                received.add(StateChange.model_validate_json(message.body).id)
                await message.ack()
        return committed <= received

    await eventually(all_delivered, timeout=60, interval=0.5, what="every committed change delivered")

    async def outbox_empty() -> bool:  # rows go once the broker confirmed, which may follow delivery
        async with ctx.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM outbox") == 0)

    await eventually(outbox_empty, what="the outbox drained")


async def _made_some(made: list[uuid.UUID], n: int) -> bool:
    return len(made) >= n


async def test_sdk_tracker_client_works_again_after_broker_restart(
    chaos_tracker: TrackerService, chaos_backends: Backends, private_mq: PrivateRabbitMQ
) -> None:
    """A worker's or engine's AmqpTracker keeps its RPC working across a RabbitMQ restart."""
    from baton._transport.amqp import AmqpTracker
    from baton_schemas.envelopes import ProposeState
    from baton_schemas.runs import FlowRunCreate

    backends = chaos_backends
    async with await AmqpTracker.connect(backends.broker_url, rpc_timeout=5) as client:
        run = await client.create_flow_run(FlowRunCreate(flow_name=f"rpc-restart-{uuid.uuid4().hex[:6]}"))
        await asyncio.to_thread(private_mq.stop_app)
        await asyncio.to_thread(private_mq.start_app)
        await eventually(lambda: _broker_up(backends.broker_url), timeout=60, what="RabbitMQ back")

        async def proposes() -> bool:
            try:
                result = await client.propose_state(ProposeState(flow_run_id=run.id, state=Running()))
            except Exception:
                return False
            return result.state is not None and result.state.type.value == "RUNNING"

        await eventually(proposes, timeout=60, interval=0.5, what="an RPC answered after the restart")
