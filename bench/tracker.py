"""Foundation figures: transition round trips (AMQP RPC and HTTP), transitions per second,
task-run states ingested per second, idle RSS of `baton server start` (API + tracker).

Usage: .venv/bin/python bench/tracker.py [--trackers N]
(--trackers 2 adds a `baton server start --service tracker` process: scaling out, which pays
off where the machine has cores to spare beyond PostgreSQL's, RabbitMQ's and the client's.)
Targets on a 2-core machine: RPC p50 <= 2 ms, p99 <= 10 ms; >= 1,500 transitions/s;
>= 20,000 task-run states/s; idle RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

import asyncpg
import httpx
from _cpu import CpuMeter
from _harness import RunningServer, describe, server, server_process
from amqp_ceiling import echo_server_process
from amqp_ceiling import measure as measure_ceiling

from baton._amqp import Connection, Delivery
from baton._event_loop import loop_factory
from baton._transport.amqp import AmqpTracker
from baton_schemas.envelopes import ProposeState, TaskRunStateReport, TaskRunStates
from baton_schemas.runs import FlowRunCreate, TaskRunInfo
from baton_schemas.states import Completed, Pending, Running


async def rpc_round_trips(tracker: AmqpTracker, runs: int) -> list[float]:
    latencies = []
    for _ in range(runs):
        run = await tracker.create_flow_run(FlowRunCreate(flow_name="bench-rpc"))
        for state in (Pending(), Running(), Completed()):
            started = time.perf_counter()
            await tracker.propose_state(ProposeState(flow_run_id=run.id, state=state))
            latencies.append(time.perf_counter() - started)
    return latencies


async def http_round_trips(api_url: str, key: str | None, runs: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies = []
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as client:
        for _ in range(runs):
            run = (await client.post("/flow_runs", json={"flow_name": "bench-http"})).json()
            for state in (Pending(), Running(), Completed()):
                started = time.perf_counter()
                response = await client.post(
                    f"/flow_runs/{run['id']}/set_state", json={"state": state.model_dump(mode="json")}
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
    return latencies


async def throughput(tracker: AmqpTracker, meter: CpuMeter, runs: int, concurrency: int) -> float:
    created = await asyncio.gather(
        *(tracker.create_flow_run(FlowRunCreate(flow_name="bench-throughput")) for _ in range(runs))
    )
    queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
    for run in created:
        queue.put_nowait(run.id)

    async def lifecycle() -> int:
        done = 0
        while not queue.empty():
            run_id = queue.get_nowait()
            for state in (Pending(), Running(), Completed()):
                await tracker.propose_state(ProposeState(flow_run_id=run_id, state=state))
                done += 1
        return done

    before = meter.sample()
    counts = await asyncio.gather(*(lifecycle() for _ in range(concurrency)))
    after = meter.sample()
    print(f"  {CpuMeter.per_op(before, after, sum(counts))}")
    return sum(counts) / (after.wall - before.wall)


async def ingest(
    tracker: AmqpTracker, meter: CpuMeter, srv: RunningServer, states: int, batch: int
) -> tuple[float, float]:
    """Task-run states per second: stored in PostgreSQL, and delivered to a subscriber's queue."""
    run = await tracker.create_flow_run(FlowRunCreate(flow_name="bench-ingest"))
    reports = []
    for i in range(states // 3):
        info = TaskRunInfo(
            id=uuid.uuid4(), flow_run_id=run.id, name=f"t-{i}", task_key="t", dynamic_key=str(i)
        )
        for version, state in enumerate((Pending(), Running(), Completed()), start=1):
            reports.append(TaskRunStateReport(task_run=info, state=state, version=version))
    batches = [TaskRunStates(reports=reports[i : i + batch]) for i in range(0, len(reports), batch)]
    # the subscriber is Baton's lean client, so its own cost does not hide the server's
    subscriber = await Connection.open(srv.backends.broker_url, name="bench-subscriber")
    conn = await asyncpg.connect(srv.backends.database_url)
    try:
        channel = await subscriber.channel(prefetch=1000)
        queue, _, _ = await channel.declare_queue("", exclusive=True)
        await channel.bind_queue(queue, "baton.states", "task-run.#")
        # delivery is at least once: count each state's first copy, and the copies beyond it
        seen: set[str | None] = set()
        copies = 0
        all_delivered = asyncio.Event()

        def count(message: Delivery) -> None:
            nonlocal copies
            copies += 1
            seen.add(message.message_id)
            message.ack()
            if len(seen) >= len(reports):
                all_delivered.set()

        await channel.consume(queue, count)
        # A batch is stored in one transaction: once its last state is there, all of it is.
        # (Counting the states table instead would scan it fifty times a second, and the
        # benchmark would be measuring its own queries.)
        markers = [b.reports[-1].state.id for b in batches]
        count_stored = "SELECT count(*) FROM states WHERE id = ANY($1::uuid[])"
        before = meter.sample()
        await asyncio.gather(*(tracker.send(b) for b in batches))
        while await conn.fetchval(count_stored, markers) < len(markers):
            await asyncio.sleep(0.02)
        stored = len(reports) / (time.perf_counter() - before.wall)
        await all_delivered.wait()
        after = meter.sample()
        print(f"  {CpuMeter.per_op(before, after, len(reports))} (stored, published and delivered)")
        if copies > len(seen):
            print(f"  {copies - len(seen)} states delivered more than once")
        return stored, len(reports) / (after.wall - before.wall)
    finally:
        await conn.close()
        await subscriber.close()


async def main(srv: RunningServer, extra_pids: list[int]) -> None:
    await asyncio.sleep(3)
    print(f"server idle RSS: {srv.rss_mb():.1f} MB")
    # The same machine can be twice as fast one hour as the next: the AMQP-only ceiling, measured
    # now, tells how much of what follows is Baton and how much is the machine.
    with echo_server_process(srv.backends.broker_url) as (queue_name, pid):
        ceiling = await measure_ceiling(
            srv.backends.broker_url, queue_name, pid, serial=1000, calls=4000, publishes=0
        )
    meter = CpuMeter(srv.server.process.pid, *extra_pids)
    async with await AmqpTracker.connect(srv.backends.broker_url) as tracker:
        await rpc_round_trips(tracker, 30)  # warm-up
        rpc = await rpc_round_trips(tracker, 400)
        print(describe("transition round trip, AMQP RPC", rpc))
        print(f"  {statistics.median(rpc) * 1000 / ceiling.p50_ms:.1f}x the echo round trip")
        print(describe("transition round trip, HTTP", await http_round_trips(srv.api_url, None, 400)))
        rate = await throughput(tracker, meter, 2000, 64)
        print(f"accepted flow-run transitions/s (AMQP, 64 in flight): {rate:.0f}")
        print(f"  {100 * rate / ceiling.per_second:.0f}% of the echo RPCs/s")
        stored, delivered = await ingest(tracker, meter, srv, 60000, 1000)
        print(f"task-run states/s (batches of 1000): stored {stored:.0f}, delivered {delivered:.0f}")
    print(f"server RSS after the run: {srv.rss_mb():.1f} MB")
    await asyncio.sleep(12)  # the server looks at its RSS every 10 s and trims the heap
    print(f"server RSS at idle after the run: {srv.rss_mb():.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--trackers", type=int, default=1, help="tracker processes in all")
    args = parser.parse_args()
    with server(BATON_AUTH_REQUIRED="false") as running, contextlib.ExitStack() as extra:
        pids = [
            extra.enter_context(server_process(running.backends, running.log_dir, "tracker")).process.pid
            for _ in range(args.trackers - 1)
        ]
        # the bench client's loop is the one the SDK runs its reporter on
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(main(running, pids))
