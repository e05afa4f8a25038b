"""Scheduler figures: punctuality and scale.

Punctuality: 20 deployments with interval schedules of 1-2 s and staggered anchors, one worker
with pre-started (warm) processes, for --seconds (120): slot -> flow code started, p50 and p99,
and how many started before their slot. Target p99 <= 250 ms.

Scale: --schedules (10,000) active schedules, cron, interval and rrule mixed, in five zones,
three runs each ahead: the first fill of the horizon by a `baton server start --service
scheduler` process (target <= 10 s), runs created per second, CPU per run, the process's RSS
after it (target <= 150 MB), and the CPU of a steady-state pass (target <= 1 s), measured in this
process on a SchedulerService of its own.

Usage: .venv/bin/python bench/scheduler.py [--seconds 120] [--schedules 10000] [--only punctuality|scale]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from _cpu import CpuMeter
from _harness import ROOT, RunningServer, percentile, server, server_process, test_backends
from tests.support.backends import Backends

from baton_schemas import utcnow

BATON = str(ROOT / ".venv" / "bin" / "baton")

FLOW = """
import os, time
from baton import flow

@flow
def tick() -> None:
    started = time.time()
    with open(os.environ["BENCH_STARTS"], "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} {started}\\n")
"""


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def wait_for(probe: object, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():  # type: ignore[operator]
            return
        await asyncio.sleep(interval)
    raise TimeoutError(what)


# --- punctuality ----------------------------------------------------------------------------------


PUNCTUALITY_ENV = {"BATON_AUTH_REQUIRED": "false", "BATON_SCHEDULER_MIN_AHEAD_SECONDS": "30"}


async def punctuality(srv: RunningServer, seconds: float, deployments: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "tick.py").write_text(FLOW)
        starts_file = workdir / "starts.txt"
        worker_env = {
            **os.environ,
            "BATON_API_URL": srv.api_url,
            "BATON_BROKER_URL": srv.backends.broker_url,
            "BATON_LOG_LEVEL": "WARNING",
            "BENCH_STARTS": str(starts_file),
        }
        async with httpx.AsyncClient(base_url=srv.api_url, timeout=30) as api:
            (await api.post("/work_pools", json={"name": "punctual"})).raise_for_status()
            log = (workdir / "worker.log").open("wb")
            argv = [BATON, "worker", "start", "--pool", "punctual", "--limit", "16", "--prestart", "4"]
            worker = subprocess.Popen(argv, cwd=workdir, env=worker_env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
            try:
                await asyncio.sleep(4)  # the worker up, its processes pre-started
                base = utcnow().replace(microsecond=0) + timedelta(seconds=3)
                for i in range(deployments):
                    interval = 1.0 + (i % 5) * 0.25  # 1, 1.25 ... 2 s
                    anchor = base + timedelta(seconds=i / deployments)  # staggered
                    schedule = {
                        "kind": "interval",
                        "interval_seconds": interval,
                        "anchor_date": anchor.isoformat(),
                    }
                    body = {
                        "name": f"p{i}",
                        "flow_name": "tick",
                        "entrypoint": "tick.py:tick",
                        "work_pool_name": "punctual",
                        "schedules": [{"schedule": schedule}],
                    }
                    (await api.post("/deployments", json=body)).raise_for_status()
                began = utcnow()
                await asyncio.sleep(seconds)
                ended = utcnow()
                await asyncio.sleep(3)  # the last slots' runs start
            finally:
                worker.terminate()
                worker.wait(30)
                log.close()
        conn = await asyncpg.connect(srv.backends.database_url)
        try:
            rows = await conn.fetch(
                """SELECT id::text, schedule_slot, state_type FROM flow_runs
                   WHERE schedule_slot >= $1 AND schedule_slot < $2""",
                began + timedelta(seconds=2),  # the first slots after deploying settle the horizon
                ended,
            )
        finally:
            await conn.close()
        started = {}
        for line in starts_file.read_text().splitlines() if starts_file.exists() else []:
            run_id, at = line.split()
            started[run_id] = float(at)
        worker_log = (workdir / "worker.log").read_text(errors="replace")
    if not started:
        print(f"no run started; the worker's log:\n{worker_log[-3000:]}")
        return
    delays = [started[r["id"]] - r["schedule_slot"].timestamp() for r in rows if r["id"] in started]
    missing = len(rows) - len(delays)
    ms = [d * 1000 for d in delays]
    early = sum(1 for d in ms if d < 0)
    print(f"[punctuality: {deployments} deployments, interval 1-2 s, staggered, one worker, {seconds:.0f} s]")
    print(
        f"  slot -> flow code started: p50 {statistics.median(ms):.0f} ms, "
        f"p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms (n={len(ms)}; target p99 <= 250 ms)"
    )
    print(f"  started before the slot: {early}; slots with no start recorded: {missing}")
    print(f"  load: {load()}")


# --- scale ------------------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
CRONS = ["*/5 * * * *", "0 * * * *", "15 2 * * *", "30 9 * * 1-5", "0 */6 * * *"]
RRULES = [
    "FREQ=HOURLY;BYMINUTE=7",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0",
    "FREQ=DAILY;BYHOUR=6,18;BYMINUTE=30",
    "FREQ=MINUTELY;INTERVAL=10",
]


def schedule_of(i: int) -> dict[str, object]:
    zone = ZONES[i % len(ZONES)]
    kind = i % 3
    if kind == 0:
        spec: dict[str, object] = {"kind": "cron", "cron": CRONS[i % len(CRONS)], "timezone": zone}
    elif kind == 1:
        spec = {"kind": "interval", "interval_seconds": 60 * (1 + i % 60), "timezone": zone}
    else:
        spec = {"kind": "rrule", "rrule": RRULES[i % len(RRULES)], "timezone": zone}
    return {
        "id": str(uuid.uuid4()),
        "slug": f"{spec['kind']}-1",
        "schedule": spec,
        "active": True,
        "parameters": {},
        "max_scheduled_runs": None,
        "jitter": None,
        "policy": None,
    }


async def make_deployments(database_url: str, count: int) -> None:
    """Straight into the tables (the API would take minutes for 10,000); the trigger on
    deployments tells the scheduler, as a deploy would."""
    conn = await asyncpg.connect(database_url)
    try:
        pool_id = uuid.uuid4()
        await conn.execute("INSERT INTO work_pools (id, name, type) VALUES ($1, 'scale', 'process')", pool_id)
        await conn.execute(
            "INSERT INTO work_queues (id, pool_id, name) VALUES ($1, $2, 'default')", uuid.uuid4(), pool_id
        )
        flow_id = uuid.uuid4()
        await conn.execute("INSERT INTO flows (id, name, slug) VALUES ($1, 'scale', 'scale')", flow_id)
        rows = [
            (uuid.uuid4(), f"d{i}", flow_id, "x.py:f", "scale", orjson.dumps([schedule_of(i)]).decode())
            for i in range(count)
        ]
        await conn.executemany(
            """INSERT INTO deployments (id, name, flow_id, entrypoint, work_pool_name, schedules)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            rows,
        )
    finally:
        await conn.close()


async def scale(backends: Backends, logs: Path, schedules: int) -> None:
    runs_each = 3
    env = {
        "BATON_SCHEDULER_MIN_RUNS": str(runs_each),
        "BATON_SCHEDULER_MIN_AHEAD_SECONDS": "0",
    }
    subprocess.run(  # noqa: ASYNC221
        [BATON, "server", "db", "upgrade"],
        env={**os.environ, "BATON_DATABASE_URL": backends.database_url},
        check=True,
        capture_output=True,
    )
    await make_deployments(backends.database_url, schedules)
    conn = await asyncpg.connect(backends.database_url)
    try:
        meter_started = time.perf_counter()
        with server_process(backends, logs, "scheduler", **env) as proc:  # type: ignore[arg-type]
            meter = CpuMeter(proc.process.pid)
            before = meter.sample()
            ready = time.perf_counter()

            async def filled() -> bool:
                made = await conn.fetchval("SELECT count(*) FROM flow_runs")
                return bool(made >= schedules * runs_each)

            await wait_for(filled, 600, "the first fill", interval=0.05)
            fill_wall = time.perf_counter() - ready
            after = meter.sample()
            made = await conn.fetchval("SELECT count(*) FROM flow_runs")
            dupes = await conn.fetchval("SELECT count(*) - count(DISTINCT idempotency_key) FROM flow_runs")
            await asyncio.sleep(5)  # the outbox drained, memory settled
            rss, peak = proc.rss_mb(), proc.rss_mb("VmHWM")
        startup = ready - meter_started
    finally:
        await conn.close()
    cpu = after.seconds["server"] - before.seconds["server"]
    print(
        f"[scale: {schedules} active schedules (cron, interval, rrule; {len(ZONES)} zones), "
        f"{runs_each} runs each]"
    )
    print(
        f"  first fill of the horizon: {fill_wall:.1f} s from the scheduler up "
        f"({startup:.1f} s to start); {made} runs, duplicates {dupes} (target <= 10 s)"
    )
    print(
        f"  runs created per second: {made / fill_wall:.0f}; scheduler CPU {cpu:.1f} s "
        f"({1000 * cpu / max(made, 1):.3f} ms per run, with its outbox)"
    )
    print(f"  {CpuMeter.per_op(before, after, max(made, 1))}")
    print(f"  scheduler RSS after the fill: {rss:.0f} MB, peak {peak:.0f} MB (target <= 150 MB)")
    await steady_pass(backends.database_url, backends.broker_url, schedules)
    print(f"  load: {load()}")


async def steady_pass(database_url: str, broker_url: str, schedules: int) -> None:
    from baton_server.context import ServerContext
    from baton_server.scheduler.service import SchedulerService
    from baton_server.settings import ServerSettings

    settings = ServerSettings(
        database_url=database_url, broker_url=broker_url, scheduler_min_runs=3, scheduler_min_ahead_seconds=0
    )
    ctx = await ServerContext.open(settings, name="bench-scheduler")
    try:
        service = SchedulerService(ctx)
        cpu, wall = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            await service.run_pass()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            await asyncio.sleep(1)
    finally:
        await ctx.close()
    print(
        f"  steady-state pass over {schedules} schedules: "
        f"CPU median {1000 * statistics.median(cpu):.0f} ms, max {1000 * max(cpu):.0f} ms; "
        f"wall median {1000 * statistics.median(wall):.0f} ms (target CPU <= 1 s)"
    )


def main(args: argparse.Namespace) -> None:
    # the backends are made outside any event loop (their setup runs one of its own)
    if args.only in (None, "punctuality"):
        with server(**PUNCTUALITY_ENV) as srv:
            asyncio.run(punctuality(srv, args.seconds, args.deployments))
    if args.only in (None, "scale"):
        with test_backends() as backends, tempfile.TemporaryDirectory() as logs:
            asyncio.run(scale(backends, Path(logs), args.schedules))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--only", choices=["punctuality", "scale"])
    main(parser.parse_args())
