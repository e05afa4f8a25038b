"""Two tracker processes on the same queues, as an operator scales Baton out: racing claims still
have one winner, every run's history stays gap-free, and subscribers get each run's
transitions in order."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path

import aio_pika
import asyncpg

from baton._transport.amqp import AmqpTracker
from baton_schemas.envelopes import Claim, ProposeState, StateChange
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Completed, Pending, Running, StateType, Verdict
from baton_schemas.topology import STATES, TRACKER_RPC_QUEUE

from ..support.backends import Backends
from ..support.processes import server_process
from ..support.waiting import eventually

RUNS = 40


async def _lifecycle(tracker: AmqpTracker, run_id: uuid.UUID) -> list[Verdict]:
    """Two workers race for the run; the winner runs it to Completed."""

    async def claim(worker: str) -> tuple[str, Verdict]:
        result = await tracker.propose_state(
            ProposeState(flow_run_id=run_id, state=Pending(), claim=Claim(worker_id=worker))
        )
        return worker, result.verdict

    answers = await asyncio.gather(claim("worker-a"), claim("worker-b"))
    for state in (Running(), Completed()):
        await tracker.propose_state(ProposeState(flow_run_id=run_id, state=state))
    return [verdict for _, verdict in answers]


async def test_two_trackers_keep_every_rule_and_the_order(backends: Backends, tmp_path: Path) -> None:
    connection = await aio_pika.connect(backends.broker_url)
    received: dict[uuid.UUID, list[StateChange]] = defaultdict(list)
    async with connection:
        with (
            server_process(backends, tmp_path, "tracker"),
            server_process(backends, tmp_path, "tracker"),
        ):
            channel = await connection.channel()
            rpc_queue = await channel.declare_queue(TRACKER_RPC_QUEUE, passive=True)
            # ours, and any other tracker this test session has running on the same vhost
            assert (rpc_queue.declaration_result.consumer_count or 0) >= 2

            subscriber = await channel.declare_queue(exclusive=True)
            await subscriber.bind(STATES, routing_key="flow-run.#")

            async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                change = StateChange.model_validate_json(message.body)
                received[change.run_id].append(change)
                await message.ack()

            await subscriber.consume(collect)

            async with await AmqpTracker.connect(backends.broker_url) as tracker:
                runs = await asyncio.gather(
                    *(
                        tracker.create_flow_run(FlowRunCreate(flow_name="scaled", work_pool_name="scaled"))
                        for _ in range(RUNS)
                    )
                )
                verdicts = await asyncio.gather(*(_lifecycle(tracker, run.id) for run in runs))
                for claims in verdicts:
                    assert sorted(v.value for v in claims) == ["ABORT", "ACCEPT"], claims

                async def all_delivered() -> bool:
                    return all(
                        received[run.id] and received[run.id][-1].state.type is StateType.COMPLETED
                        for run in runs
                    )

                await eventually(all_delivered, timeout=30, what="every run's Completed on baton.states")

    db = await asyncpg.connect(backends.database_url)
    try:
        for run in runs:
            versions = [
                row["version"]
                for row in await db.fetch(
                    "SELECT version FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
                )
            ]
            assert versions == list(range(1, len(versions) + 1)), f"history of {run.id} has gaps"
            # at-least-once: a message may come twice; the first copies come in order
            firsts = list(dict.fromkeys(c.state_version for c in received[run.id]))
            assert firsts == versions, f"{run.id}: delivered {firsts}, written {versions}"
    finally:
        await db.close()


async def test_a_stale_claim_loses_on_either_tracker(backends: Backends, tmp_path: Path) -> None:
    """Whichever process answers, a second claim on a claimed run is refused."""
    with server_process(backends, tmp_path, "tracker"), server_process(backends, tmp_path, "tracker"):
        async with await AmqpTracker.connect(backends.broker_url) as tracker:
            run = await tracker.create_flow_run(FlowRunCreate(flow_name="scaled-stale", work_pool_name="s"))
            first = await tracker.propose_state(
                ProposeState(flow_run_id=run.id, state=Pending(), claim=Claim(worker_id="one"))
            )
            assert first.verdict is Verdict.ACCEPT
            for attempt in range(6):  # round-robin: both processes answer some of these
                again = await tracker.propose_state(
                    ProposeState(flow_run_id=run.id, state=Pending(), claim=Claim(worker_id=f"w{attempt}"))
                )
                assert again.verdict is Verdict.ABORT
