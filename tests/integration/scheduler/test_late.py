"""Late: a run still Scheduled past its time by more than late_after becomes Late, once, and the
change is published on baton.states like every other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from baton_schemas import utcnow
from baton_schemas.deployments import DeploymentRunCreate
from baton_schemas.envelopes import StateChange
from baton_schemas.pools import WorkPoolCreate
from baton_schemas.topology import STATES
from baton_server.context import ServerContext
from baton_server.db.deployments import create_deployment_run, get_deployment
from baton_server.db.pools import create_pool
from baton_server.scheduler.service import SchedulerService

from ...support.backends import Backends
from ...support.waiting import eventually
from .helpers import deploy


@pytest.fixture
async def states_channel(backends: Backends) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        yield await connection.channel()


async def _run_at(ctx: ServerContext, deployment_id: uuid.UUID, seconds_ago: float) -> uuid.UUID:
    async with ctx.pool.acquire() as conn:
        deployment = await get_deployment(conn, deployment_id)
        run, rows, _ = await create_deployment_run(
            conn,
            deployment,
            DeploymentRunCreate(scheduled_time=utcnow() - timedelta(seconds=seconds_ago)),
            dispatch_within=0.5,
        )
    ctx.outbox.sent_after_commit(rows)
    return run.id


async def test_a_run_is_made_late_once_and_published(
    ctx: ServerContext, states_channel: aio_pika.abc.AbstractChannel
) -> None:
    received: list[StateChange] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        received.append(StateChange.model_validate_json(message.body))
        await message.ack()

    queue = await states_channel.declare_queue(f"late-{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(STATES, routing_key="flow-run.scheduled.#")
    await queue.consume(on_message)

    # late after 1 s for this deployment; the other keeps the pool's 30 s
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    late = await deploy(ctx, [], policy={"late_after": 1.0})
    async with ctx.pool.acquire() as conn:
        await create_pool(conn, WorkPoolCreate(name=pool, late_after_seconds=30))
    patient = await deploy(ctx, [], pool=pool)
    late_run = await _run_at(ctx, late, 3)
    patient_run = await _run_at(ctx, patient, 20)  # late for the default 15 s, not for its pool

    schedulers = [SchedulerService(ctx) for _ in range(3)]
    for _ in range(3):  # replicas racing, and passes after the marking
        await asyncio.gather(*(s.run_pass() for s in schedulers))

    async with ctx.pool.acquire() as conn:
        history = await conn.fetch(
            "SELECT flow_run_id, name FROM states WHERE flow_run_id = ANY($1::uuid[]) ORDER BY version",
            [late_run, patient_run],
        )
        row = await conn.fetchrow("SELECT state_name, state FROM flow_runs WHERE id = $1", late_run)
    assert [h["name"] for h in history if h["flow_run_id"] == late_run] == ["Scheduled", "Late"]
    assert [h["name"] for h in history if h["flow_run_id"] == patient_run] == ["Scheduled"]
    assert row is not None and row["state_name"] == "Late"
    assert row["state"]["type"] == "SCHEDULED"

    def lates() -> list[StateChange]:
        return [c for c in received if c.run_id == late_run and c.state.name == "Late"]

    async def published() -> bool:
        return bool(lates())

    await eventually(published, what="the Late change on baton.states")

    # and nothing more arrives for it: every pass has run, the outbox is drained
    async def drained() -> bool:
        async with ctx.pool.acquire() as conn:
            return not await conn.fetchval("SELECT count(*) FROM outbox WHERE ordering_key = $1", late_run)

    await eventually(drained, what="the outbox to have sent every row of the run")
    assert len(lates()) == 1
    assert lates()[0].previous_name == "Scheduled"
