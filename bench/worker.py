"""Worker figures: no-op flow runs per second through one pool and one worker, created -> flow
code started (p50, p99), and the worker's RSS at idle; with fresh and with pre-started processes.

Usage: .venv/bin/python bench/worker.py [--runs 200] [--latency-runs 60] [--limit 8]
Targets on a 2-core machine: >= 20 no-op runs/s with one worker; created -> started p50
<= 300 ms (<= 100 ms with pre-started processes), p99 <= 1 s; worker RSS at idle <= 80 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
from _harness import ROOT, RunningServer, percentile, server

BATON = str(ROOT / ".venv" / "bin" / "baton")

FLOW = """
import os, time
from baton import flow

@flow
def noop() -> None:
    started = time.time()
    with open(os.environ["BENCH_STARTS"], "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} {started}\\n")
"""


COMPLETED = "SELECT count(*) FROM flow_runs WHERE deployment_id = $1 AND state_type = 'COMPLETED'"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def starts(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {run_id: float(at) for run_id, at in pairs}


async def wait_for(probe: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(what)


async def scenario(
    srv: RunningServer, workdir: Path, name: str, args: argparse.Namespace, prestart: int
) -> None:
    starts_file = workdir / f"starts-{name}.txt"
    pool = f"bench-{name}"
    async with httpx.AsyncClient(base_url=srv.api_url, timeout=30) as api:
        (await api.post("/work_pools", json={"name": pool})).raise_for_status()
        deployment = (
            await api.post(
                "/deployments",
                json={
                    "name": name,
                    "flow_name": "noop",
                    "entrypoint": "noop.py:noop",
                    "work_pool_name": pool,
                },
            )
        ).json()
        env = {
            **os.environ,
            "BATON_API_URL": srv.api_url,
            "BATON_BROKER_URL": srv.backends.broker_url,
            "BATON_LOG_LEVEL": "WARNING",  # the worker's own, and its runs
            "BENCH_STARTS": str(starts_file),
        }
        argv = [BATON, "worker", "start", "--pool", pool, "--limit", str(args.limit)]
        argv += ["--prestart", str(prestart)]  # 0 too: the worker's default is to pre-start
        log = (workdir / f"worker-{name}.log").open("wb")
        worker = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        try:
            await asyncio.sleep(4)  # started and settled
            idle = rss_mb(worker.pid)
            helpers = sum(rss_mb(pid) for pid in children(worker.pid))
            conn = await asyncpg.connect(srv.backends.database_url)
            try:
                # created -> started, one run at a time
                latencies = []
                for _ in range(args.latency_runs):
                    run = (await api.post(f"/deployments/{deployment['id']}/runs", json={})).json()
                    created = datetime.fromisoformat(run["created"].replace("Z", "+00:00")).timestamp()
                    await wait_for(lambda run=run: _started(starts_file, run["id"]), 30, "a run to start")
                    latencies.append(starts(starts_file)[run["id"]] - created)
                    await asyncio.sleep(0.05)
                # throughput: N runs created at once, until the last one completed
                began = time.monotonic()
                await asyncio.gather(
                    *(api.post(f"/deployments/{deployment['id']}/runs", json={}) for _ in range(args.runs))
                )
                total = args.runs + args.latency_runs

                async def all_done() -> bool:
                    done = await conn.fetchval(COMPLETED, deployment["id"])
                    return bool(done >= total)

                await wait_for(all_done, 300, "all runs to complete")
                rate = args.runs / (time.monotonic() - began)
                bad = await conn.fetchval(
                    "SELECT count(*) FROM flow_runs WHERE deployment_id = $1 AND state_type <> 'COMPLETED'",
                    deployment["id"],
                )
            finally:
                await conn.close()
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()
    ms = [s * 1000 for s in latencies]
    label = f"prestart {prestart}" if prestart else "fresh processes"
    print(f"[{label}, limit {args.limit}]")
    print(f"  no-op runs/s, one worker: {rate:.1f} (n={args.runs}, not completed: {bad})")
    print(
        f"  created -> flow code started: p50 {statistics.median(ms):.0f} ms, "
        f"p99 {percentile(ms, 0.99):.0f} ms (n={len(ms)})"
    )
    extra = f" (+ {helpers:.1f} MB of pre-started processes)" if prestart else ""
    print(f"  worker RSS at idle: {idle:.1f} MB{extra}")


async def _started(path: Path, run_id: str) -> bool:
    return run_id in starts(path)


async def main(srv: RunningServer, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "noop.py").write_text(FLOW)
        await scenario(srv, workdir, "fresh", args, prestart=0)
        await scenario(srv, workdir, "prestart", args, prestart=args.prestart)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=60)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--prestart", type=int, default=2)
    arguments = parser.parse_args()
    with server(BATON_AUTH_REQUIRED="false") as running:
        asyncio.run(main(running, arguments))
