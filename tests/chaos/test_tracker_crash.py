"""One of two tracker processes is killed (SIGKILL) while runs are moving.

Nothing may be lost or reordered: the broker hands the dead process's unacknowledged requests to
the survivor, callers resend what went unanswered under the same transition id, and the
survivor's sweeper sends the state changes the dead process committed and never published,
each run's in order.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import defaultdict
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from baton._transport import TransportUnavailable
from baton._transport.amqp import AmqpTracker
from baton_schemas.envelopes import ProposeState, StateChange
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Completed, Pending, Running, StateType, TransitionResult, Verdict
from baton_schemas.topology import STATES

from ..support.backends import Backends
from ..support.processes import server_process
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos

RUNS = 30


async def _until_answered(tracker: AmqpTracker, proposal: ProposeState) -> TransitionResult:
    """A caller's loop: resend the same proposal (same transition id) until it is answered."""
    for _ in range(20):
        try:
            return await tracker.propose_state(proposal)
        except TransportUnavailable:  # the request died with the process that took it
            await asyncio.sleep(0.2)
    raise AssertionError(f"{proposal.state.name} of {proposal.flow_run_id} never answered")


async def _lifecycle(
    tracker: AmqpTracker, run_id: uuid.UUID, pause: float, finished: list[uuid.UUID]
) -> None:
    for state in (Pending(), Running(), Completed()):
        result = await _until_answered(tracker, ProposeState(flow_run_id=run_id, state=state))
        assert result.verdict is Verdict.ACCEPT, result
        await asyncio.sleep(pause)
    finished.append(run_id)


async def _at_least(finished: list[uuid.UUID], n: int) -> bool:
    return len(finished) >= n


async def test_a_killed_tracker_loses_nothing(backends: Backends, tmp_path: Path) -> None:
    received: dict[uuid.UUID, list[int]] = defaultdict(list)

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        change = StateChange.model_validate_json(message.body)
        received[change.run_id].append(change.state_version)
        await message.ack()

    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        with (
            server_process(backends, tmp_path, "tracker") as doomed,
            server_process(backends, tmp_path, "tracker"),
        ):
            channel = await connection.channel()
            subscriber = await channel.declare_queue(exclusive=True)
            await subscriber.bind(STATES, routing_key="flow-run.#")
            await subscriber.consume(collect)
            async with await AmqpTracker.connect(backends.broker_url, rpc_timeout=2) as tracker:
                runs = [
                    await tracker.create_flow_run(FlowRunCreate(flow_name="crash-survivor"))
                    for _ in range(RUNS)
                ]
                finished: list[uuid.UUID] = []
                moving = asyncio.gather(
                    *(_lifecycle(tracker, r.id, 0.05 * (i % 5), finished) for i, r in enumerate(runs))
                )
                await eventually(  # some runs done, the rest on their way: now
                    lambda: _at_least(finished, 3), timeout=10, interval=0.01, what="three runs completed"
                )
                doomed.process.send_signal(signal.SIGKILL)
                assert len(finished) < RUNS, "the kill came after the work: it proves nothing"
                await moving

                async def all_completed() -> bool:
                    return all(4 in received[r.id] for r in runs)

                await eventually(all_completed, timeout=30, what="every run's Completed on baton.states")

                # while the survivor runs: it deletes what it confirmed (after delivery, maybe)
                async def outbox_drained() -> bool:
                    left = "SELECT count(*) FROM outbox WHERE ordering_key = ANY($1::uuid[])"
                    db = await asyncpg.connect(backends.database_url)
                    try:
                        return bool(await db.fetchval(left, [r.id for r in runs]) == 0)
                    finally:
                        await db.close()

                await eventually(outbox_drained, what="the outbox drained")

    db = await asyncpg.connect(backends.database_url)
    try:
        for run in runs:
            rows = await db.fetch(
                "SELECT version, type FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
            )
            assert [r["version"] for r in rows] == [1, 2, 3, 4]
            assert rows[-1]["type"] == StateType.COMPLETED.value
            firsts = list(dict.fromkeys(received[run.id]))
            assert firsts == [1, 2, 3, 4], f"{run.id}: delivered {received[run.id]}"
    finally:
        await db.close()
