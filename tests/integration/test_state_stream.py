"""What other systems see: state changes on `baton.states`, and the outbox behind them."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from baton_schemas.envelopes import StateChange
from baton_schemas.states import Completed, Failed, Pending, Running
from baton_schemas.topology import STATES
from baton_server.context import ServerContext

from ..support.backends import Backends
from ..support.runs import new_run, propose
from ..support.waiting import eventually


class Subscriber:
    """Another system: its own queue bound to baton.states, nothing else from Baton."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.received: list[StateChange] = []
        self.raw: list[AbstractIncomingMessage] = []

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.raw.append(message)
        self.received.append(StateChange.model_validate_json(message.body))
        await message.ack()


@pytest.fixture
async def subscribe(backends: Backends) -> AsyncIterator:  # type: ignore[type-arg]
    connection = await aio_pika.connect_robust(backends.broker_url)
    channel = await connection.channel()

    async def bind(pattern: str) -> Subscriber:
        queue = await channel.declare_queue(f"subscriber-{uuid.uuid4().hex[:8]}", exclusive=True)
        await queue.bind(STATES, routing_key=pattern)
        subscriber = Subscriber(queue)
        await queue.consume(subscriber.on_message)
        return subscriber

    yield bind
    await connection.close()


async def test_subscriber_gets_every_transition_in_order_per_run(ctx: ServerContext, subscribe) -> None:  # type: ignore[no-untyped-def]
    subscriber = await subscribe("flow-run.#")
    flow = f"orders {uuid.uuid4().hex[:6]}"

    async def lifecycle(fail: bool) -> uuid.UUID:
        run = await new_run(ctx, flow=flow)
        for state in (Pending(), Running(), Failed("x") if fail else Completed()):
            await propose(ctx, run.id, state)
        return run.id

    run_ids = await asyncio.gather(*(lifecycle(fail=i % 3 == 0) for i in range(20)))
    expected = 20 * 4  # Scheduled, Pending, Running, end

    async def all_arrived() -> bool:
        return len([c for c in subscriber.received if c.flow_name == flow]) >= expected

    await eventually(all_arrived, what="every state change")
    by_run: dict[uuid.UUID, list[int]] = defaultdict(list)
    for change in subscriber.received:
        by_run[change.run_id].append(change.state_version)
    for run_id in run_ids:
        assert by_run[run_id] == [1, 2, 3, 4], f"run {run_id} got {by_run[run_id]}"
    message = next(
        m for m in subscriber.raw if m.routing_key and m.routing_key.startswith("flow-run.failed.")
    )
    assert message.content_type == "application/json"
    assert message.routing_key == f"flow-run.failed.{StateChange.model_validate_json(message.body).flow_slug}"
    assert message.message_id == str(StateChange.model_validate_json(message.body).id)


async def test_routing_keys_let_subscribers_pick(ctx: ServerContext, subscribe) -> None:  # type: ignore[no-untyped-def]
    failures = await subscribe("flow-run.failed.#")
    one_flow = await subscribe("*.*.billing-nightly")
    run = await new_run(ctx, flow="Billing Nightly")
    for state in (Running(), Failed("no money")):
        await propose(ctx, run.id, state)
    other = await new_run(ctx, flow="something else")
    await propose(ctx, other.id, Running())
    await propose(ctx, other.id, Failed())

    await eventually(lambda: _at_least(failures, 2), what="two failures")
    await eventually(lambda: _at_least(one_flow, 3), what="billing's changes")
    assert {c.flow_slug for c in failures.received} >= {"billing-nightly", "something-else"}
    assert all(c.state.type.value == "FAILED" for c in failures.received)
    assert {c.flow_slug for c in one_flow.received} == {"billing-nightly"}


async def _at_least(subscriber: Subscriber, n: int) -> bool:
    return len(subscriber.received) >= n


async def test_rows_left_unsent_are_swept(ctx: ServerContext, subscribe, conn) -> None:  # type: ignore[no-untyped-def]
    """A crash between commit and publish leaves rows in the outbox: the sweeper sends them."""
    subscriber = await subscribe("flow-run.#")
    run = await new_run(ctx, flow="swept")
    from baton_schemas.envelopes import ProposeState
    from baton_server.tracker.transitions import propose_flow_run_state

    outcome = await propose_flow_run_state(conn, ProposeState(flow_run_id=run.id, state=Running()))
    # deliberately not handing the rows to the outbox: as if the process died right here
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE id = $1", outcome.outbox[0].id) == 1

    async def swept() -> bool:
        return any(c.run_id == run.id and c.state_version == 2 for c in subscriber.received)

    await eventually(swept, what="the swept state change")

    async def row_gone() -> bool:  # the row is deleted once the broker confirmed, after delivery
        left = await conn.fetchval("SELECT count(*) FROM outbox WHERE id = $1", outcome.outbox[0].id)
        return bool(left == 0)

    await eventually(row_gone, what="the swept row deleted")
    assert orjson.loads(subscriber.raw[-1].body)["schema_version"] == 1


async def test_a_change_waits_for_an_older_one_another_process_has_yet_to_send(  # type: ignore[no-untyped-def]
    ctx: ServerContext, subscribe, conn
) -> None:
    """Two tracker processes: one committed Running and has not published it yet; this one
    commits Completed. Completed is held, and goes out only after Running, via the sweeper."""
    subscriber = await subscribe("flow-run.#")
    run = await new_run(ctx, flow="held")
    from baton_schemas.envelopes import ProposeState
    from baton_server.tracker.transitions import propose_flow_run_state

    running = await propose_flow_run_state(conn, ProposeState(flow_run_id=run.id, state=Running()))
    # not handed to this outbox: the row belongs to the other process, still on its way
    completed = await propose_flow_run_state(conn, ProposeState(flow_run_id=run.id, state=Completed()))
    assert running.outbox[0].id in completed.outbox[0].after
    ctx.outbox.sent_after_commit(completed.outbox)

    async def both() -> bool:
        return len([c for c in subscriber.received if c.run_id == run.id]) >= 3

    await eventually(both, what="Running and Completed, swept")
    assert [c.state_version for c in subscriber.received if c.run_id == run.id] == [1, 2, 3]

    async def rows_gone() -> bool:  # deleted once the broker confirmed, which may follow delivery
        return bool(await conn.fetchval("SELECT count(*) FROM outbox WHERE ordering_key = $1", run.id) == 0)

    await eventually(rows_gone, what="the run's outbox rows deleted")


async def test_fast_flow_run_change_equals_the_model(ctx: ServerContext, conn) -> None:  # type: ignore[no-untyped-def]
    """The tracker serialises flow-run state changes by hand; they must be StateChange exactly,
    whether the run's row was read back (asyncpg's UUID type) or written by this process."""
    from baton_schemas.envelopes import RunKind
    from baton_server.broker.messages import flow_run_change_message, serialise_state, state_change_message
    from baton_server.db.rows import FLOW_RUN_COLUMNS

    run = await new_run(ctx, flow="Fast Flow \u00e9")
    read = await conn.fetchrow(
        f"SELECT {FLOW_RUN_COLUMNS} FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id WHERE fr.id = $1",
        run.id,
    )
    written = {
        **dict(read),
        "id": uuid.UUID(str(read["id"])),
        "flow_id": uuid.UUID(str(read["flow_id"])),
        "deployment_id": uuid.uuid4(),
        "name": 'quoted "name"',
        "tags": ["a", "b"],
    }
    cases = [
        (read, Running(), Pending(), 3),
        (written, Completed(), None, 7),
        (read, Failed("boom"), None, 2),
    ]
    for row, state, previous, version in cases:
        fast = flow_run_change_message(row, state, serialise_state(state), version=version, previous=previous)
        model = state_change_message(
            StateChange(
                id=state.id,
                run_kind=RunKind.FLOW_RUN,
                run_id=row["id"],
                run_name=row["name"],
                flow_run_id=row["id"],
                flow_id=row["flow_id"],
                flow_name=row["flow_name"],
                flow_slug=row["flow_slug"],
                deployment_id=row["deployment_id"],
                state=state,
                previous_type=previous.type if previous else None,
                previous_name=previous.name if previous else None,
                state_version=version,
                tags=list(row["tags"]),
                occurred=state.timestamp,
            )
        )
        assert fast.body == model.body  # byte for byte: key order, timestamps, spacing
        assert fast == model  # exchange, routing key, message id, mandatory, ordering key
        assert StateChange.model_validate_json(fast.body).state == state


async def test_fast_task_run_change_equals_the_model(ctx: ServerContext, conn) -> None:  # type: ignore[no-untyped-def]
    """Ingest serialises task-run state changes by hand; they must be StateChange exactly."""
    from baton_schemas.envelopes import RunKind, TaskRunStateReport
    from baton_schemas.runs import TaskRunInfo
    from baton_server.broker.messages import TaskRunChanges, state_change_message

    run = await new_run(ctx, flow="Fast Path")
    flow_run = await conn.fetchrow(
        """SELECT fr.id, fr.flow_id, fr.deployment_id, f.name AS flow_name, f.slug AS flow_slug
           FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id WHERE fr.id = $1""",
        run.id,
    )
    deployment_id = uuid.uuid4()
    cases = [
        # one builder, several states: nothing of one message may leak into the next
        (flow_run, None, "t-1", Failed("boom"), ["a", "b"], 3),
        (flow_run, None, 't-2 \u00e9"quoted"', Running(), [], 2),
        ({**flow_run, "deployment_id": deployment_id}, deployment_id, "t-3", Completed(), ["c"], 7),
    ]
    builders = {id(row): TaskRunChanges(row) for row, *_ in cases}
    for row, deployment, name, state, tags, version in cases:
        report = TaskRunStateReport(
            task_run=TaskRunInfo(id=uuid.uuid4(), flow_run_id=run.id, name=name, task_key="t", tags=tags),
            state=state,
            version=version,
        )
        fast = builders[id(row)].message(report, report.state.model_dump_json().encode())
        model = state_change_message(
            StateChange(
                id=report.state.id,
                run_kind=RunKind.TASK_RUN,
                run_id=report.task_run.id,
                run_name=name,
                flow_run_id=run.id,
                flow_id=flow_run["flow_id"],
                flow_name="Fast Path",
                flow_slug="fast-path",
                deployment_id=deployment,
                state=report.state,
                state_version=version,
                tags=tags,
                occurred=report.state.timestamp,
            )
        )
        assert orjson.loads(fast.body) == orjson.loads(model.body)
        assert fast.body == model.body  # byte for byte: key order, timestamps, spacing
        assert (fast.exchange, fast.routing_key, fast.message_id, fast.mandatory) == (
            model.exchange,
            model.routing_key,
            model.message_id,
            model.mandatory,
        )
        assert StateChange.model_validate_json(fast.body).state == report.state
