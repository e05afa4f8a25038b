"""The tracker consuming `baton.tracker`: bad messages are parked, good ones keep flowing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import aio_pika
import pytest

from baton_schemas import utcnow
from baton_schemas.envelopes import Claim, DeadLetterHeaders, Heartbeat, Logs
from baton_schemas.events import Event
from baton_schemas.logs import LogRecord
from baton_schemas.states import Completed, Pending, Running, StateType, Verdict
from baton_schemas.topology import DEAD_QUEUE, EVENTS, TRACKER, TRACKER_ROUTING_KEY
from baton_server.context import ServerContext
from baton_server.tracker.cancellation import cancel_flow_run
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends
from ..support.runs import new_run, propose
from ..support.waiting import eventually

T = TypeVar("T")


async def _publish(backends: Backends, body: bytes, **properties: object) -> None:
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(TRACKER)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json", **properties),  # type: ignore[arg-type]
            routing_key=TRACKER_ROUTING_KEY,
        )


async def _dead_letters(backends: Backends) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(backends.broker_url)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_QUEUE)
        while (message := await queue.get(fail=False)) is not None:
            found.append(message)
            await message.ack()
    return found


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b"{not json", "invalid tracker message"),
        (b'{"kind": "propose_state", "flow_run_id": "not-a-uuid"}', "flow_run_id"),
        (b'{"kind": "launch_rockets"}', "kind"),
    ],
)
async def test_poison_message_is_dead_lettered_and_the_next_one_handled(
    ctx: ServerContext, tracker: TrackerService, backends: Backends, body: bytes, reason_part: str
) -> None:
    marker = uuid.uuid4()
    await _publish(backends, body, message_id=str(marker))
    good = LogRecord(message=f"after the poison {marker}", flow_run_id=uuid.uuid4())
    await _publish(backends, Logs(logs=[good]).to_json())

    async def stored() -> bool:
        async with ctx.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM logs WHERE id = $1", good.id))

    await eventually(stored, what="the good message after the poison")
    parked = await eventually(lambda: _dead_letters(backends), what="the dead letter")
    ours = [m for m in parked if m.message_id == str(marker)]
    assert ours, "the poison message is in baton.dead"
    headers = ours[0].headers
    assert reason_part in str(headers[DeadLetterHeaders.REASON])
    assert headers[DeadLetterHeaders.ORIGINAL_QUEUE] == "baton.tracker"
    assert ours[0].body == body, "the message is kept as it was sent, to inspect or replay"


@pytest.mark.parametrize("claimed_only", [False, True], ids=["running", "pending"])
async def test_heartbeats_extend_leases_and_the_reaper_crashes_the_silent(
    ctx: ServerContext, tracker: TrackerService, backends: Backends, claimed_only: bool
) -> None:
    """Running runs, and runs claimed whose claim's answer is still on its way to the worker
    (Pending: the worker names them in its heartbeats while it asks again)."""
    alive = await new_run(ctx)
    silent = await new_run(ctx)
    for run in (alive, silent):
        await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w-lease", lease_seconds=1.0))
        if not claimed_only:
            await propose(ctx, run.id, Running(), claim=Claim(worker_id="w-lease", lease_seconds=1.0))

    async def crashed() -> bool:
        await _publish(
            backends,
            Heartbeat(flow_run_ids=[alive.id], worker_id="w-lease", lease_seconds=1.0).to_json(),
        )
        async with ctx.pool.acquire() as conn:
            state = await conn.fetchval("SELECT state_type FROM flow_runs WHERE id = $1", silent.id)
        return bool(state == StateType.CRASHED.value)

    await eventually(crashed, timeout=20, interval=0.3, what="the silent run to be reaped")
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state_type, state FROM flow_runs WHERE id = $1", silent.id)
        alive_state = await conn.fetchval("SELECT state_type FROM flow_runs WHERE id = $1", alive.id)
    assert row is not None and "lease expired" in row["state"]["message"]
    assert alive_state == (StateType.PENDING if claimed_only else StateType.RUNNING).value


async def test_a_heartbeat_sent_as_an_rpc_is_told_which_runs_are_cancelling(
    ctx: ServerContext, tracker: TrackerService, backends: Backends
) -> None:
    from baton._transport.amqp import AmqpTracker

    running, cancelled = await new_run(ctx), await new_run(ctx)
    for run in (running, cancelled):
        await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w-rpc", lease_seconds=5.0))
        await propose(ctx, run.id, Running())
    async with ctx.pool.acquire() as conn:
        await cancel_flow_run(conn, cancelled.id, default_lease_seconds=5.0)
        before = await conn.fetchval("SELECT lease_expires_at FROM flow_runs WHERE id = $1", running.id)

    async with await AmqpTracker.connect(backends.broker_url) as client:
        answer = await client.heartbeat(Heartbeat(flow_run_ids=[running.id, cancelled.id], lease_seconds=60))
        assert answer == [cancelled.id]
        assert await client.heartbeat(Heartbeat(flow_run_ids=[])) == []  # nothing to ask: sent only
    async with ctx.pool.acquire() as conn:
        after = await conn.fetchval("SELECT lease_expires_at FROM flow_runs WHERE id = $1", running.id)
    assert after > before  # and the lease was extended (by the run's own lease of 5 s)


async def test_reaped_run_with_retries_is_rescheduled(ctx: ServerContext, tracker: TrackerService) -> None:
    run = await new_run(ctx, retries=1)
    await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w-dies", lease_seconds=0.5))
    await propose(ctx, run.id, Running(), claim=Claim(worker_id="w-dies", lease_seconds=0.5))

    async def rescheduled() -> list[str]:
        async with ctx.pool.acquire() as conn:
            return [
                r["name"]
                for r in await conn.fetch(
                    "SELECT name FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
                )
            ]

    names = await eventually(
        lambda: _when(rescheduled, lambda n: n[-1:] == ["AwaitingRetry"]), what="a retry"
    )
    assert names == ["Scheduled", "Pending", "Running", "Crashed", "AwaitingRetry"]
    async with ctx.pool.acquire() as conn:
        scheduled = await conn.fetchval("SELECT next_scheduled_time FROM flow_runs WHERE id = $1", run.id)
    assert scheduled <= utcnow() + timedelta(seconds=1)


async def _when(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool]) -> T | None:
    value = await probe()
    return value if accept(value) else None


async def _state_events(
    queue: aio_pika.abc.AbstractQueue, run_id: uuid.UUID, names: list[str], count: int
) -> list[str] | None:
    """Read what has arrived; the event names of `run_id`'s state changes once `count` have."""
    while (message := await queue.get(fail=False)) is not None:
        await message.ack()
        event = Event.model_validate_json(message.body)
        if event.resource.get("baton.resource.id") == f"baton.flow-run.{run_id}":
            names.append(event.event)
    return names if len(names) >= count else None


async def test_a_late_final_state_of_the_reaped_claim_wins_and_supersedes_the_retry(
    ctx: ServerContext, tracker: TrackerService, backends: Backends
) -> None:
    connection = await aio_pika.connect(backends.broker_url)
    channel = await connection.channel()
    events = await channel.declare_queue(exclusive=True)
    await events.bind(EVENTS, "baton.flow-run.#")
    try:
        await _late_final_state_wins(ctx, events)
    finally:
        await connection.close()


async def _late_final_state_wins(ctx: ServerContext, events: aio_pika.abc.AbstractQueue) -> None:
    run = await new_run(ctx, retries=1)
    claim_id = uuid.uuid4()
    await propose(
        ctx, run.id, Pending(), claim=Claim(worker_id="w-late", lease_seconds=0.5), transition_id=claim_id
    )
    await propose(ctx, run.id, Running(), claim_id=claim_id)

    async def history() -> list[str]:
        async with ctx.pool.acquire() as conn:
            rows = await conn.fetch("SELECT name FROM states WHERE flow_run_id = $1 ORDER BY version", run.id)
        return [r["name"] for r in rows]

    await eventually(
        lambda: _when(history, lambda n: n[-1:] == ["AwaitingRetry"]), what="reaped, retry scheduled"
    )
    late = await propose(ctx, run.id, Completed(), claim_id=claim_id)
    assert late.verdict is Verdict.ACCEPT
    assert await history() == ["Scheduled", "Pending", "Running", "Crashed", "AwaitingRetry", "Completed"]
    # the reaper's Crashed was published, and the Completed follows it
    names: list[str] = []
    published = await eventually(
        lambda: _state_events(events, run.id, names, 5), what="the run's state events"
    )
    assert published is not None and published[-3:] == [
        "baton.flow-run.Crashed",
        "baton.flow-run.AwaitingRetry",
        "baton.flow-run.Completed",
    ], published
    # the superseded retry's claim is turned away
    claim = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w-next", lease_seconds=5))
    assert claim.verdict is Verdict.ABORT
