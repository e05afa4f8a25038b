"""The fault run of issue 13, on a PostgreSQL and a RabbitMQ of its own (never the machine's).

    .venv/bin/python bench/faults.py              # the issue's durations (about 8 minutes)
    .venv/bin/python bench/faults.py --scale 0.3  # every fault shorter

Under a steady stream of deployment runs (one every --interval seconds, each flow appending a
line per execution to a file and taking --work seconds), it injects one fault after another:
the server killed (-9) for 45 s, RabbitMQ frozen (SIGSTOP) for 70 s, the worker frozen for 45 s,
PostgreSQL stopped for 60 s, and 1,000 concurrent requests with unknown API keys. It prints, per
fault, the recovery time (from the fault's end until a run created then has completed and every
run created before it has ended), and at the end: executions per run, re-executed runs,
finished runs recorded Crashed, runs stuck in a non-terminal state, messages in `baton.dead`,
and the API's p99 latency for requests with a valid key during the key flood. It asserts
nothing: the figures are for reading (issue 13 wants 0 / 0 / 0 / empty / < 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from _harness import ROOT, percentile

sys.path.insert(0, str(ROOT))

from tests.chaos._cluster import TERMINAL, Cluster, Db, cluster
from tests.support.backends import Backends
from tests.support.private import PrivatePostgres, PrivateRabbitMQ, private_postgres, private_rabbitmq

FLOWS = """
import os
import time

from baton import flow


@flow
def counted(path: str, work: float) -> None:
    with open(path, "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} start {os.getpid()}\\n")
    time.sleep(work)
    with open(path, "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} done {os.getpid()}\\n")
"""


class Stream:
    """Creates a run every `interval` seconds; a run the API could not take is counted, not retried."""

    def __init__(
        self, found: Cluster, deployment: dict[str, object], notes: Path, work: float, interval: float
    ):
        self.found, self.deployment, self.notes, self.work, self.interval = (
            found,
            deployment,
            notes,
            work,
            interval,
        )
        self.created: list[tuple[float, str]] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.create()
            self._stop.wait(self.interval)

    def create(self) -> str | None:
        try:
            run_id = self.found.run(self.deployment, path=str(self.notes), work=self.work)
        except (httpx.HTTPError, OSError):
            self.refused += 1
            return None
        self.created.append((time.monotonic(), run_id))
        return run_id

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


async def _states(db: Db) -> dict[str, str]:
    rows = await db.fetch("SELECT id::text, state_type FROM flow_runs")
    return {row["id"]: row["state_type"] for row in rows}


def _wait_for(what: str, probe: Callable[[], bool], timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(0.25)
    print(f"  ({what}: not within {timeout:.0f} s)")
    return None


def recovery(stream: Stream, db: Db, ended: float, timeout: float = 180) -> float | None:
    """From the fault's end until a run created after it completed and every older run ended."""
    probe_id: str | None = None

    def recovered() -> bool:
        nonlocal probe_id
        if probe_id is None:
            probe_id = stream.create()
            if probe_id is None:
                return False
        states = asyncio.run(_states(db))
        older = [run for at, run in stream.created if at < ended]
        return states.get(probe_id) == "COMPLETED" and all(states.get(r) in TERMINAL for r in older)

    found = _wait_for("recovery", recovered, timeout)
    return None if found is None else time.monotonic() - ended


def dead_letters(mq: PrivateRabbitMQ, vhost: str) -> int:
    listing = mq.ctl("list_queues", "-p", vhost, "name", "messages")
    for line in listing.splitlines():
        name, _, count = line.partition("\t")
        if name.strip() == "baton.dead":
            return int(count.strip() or 0)
    return 0


async def key_flood(api_url: str, key: str, n: int) -> tuple[list[float], Counter[int]]:
    """`n` concurrent GETs with unknown keys; meanwhile, valid-key GETs one after another."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as http:

        async def unknown() -> None:
            try:
                answer = await http.get(
                    "/flow_runs", headers={"Authorization": f"Bearer {secrets.token_hex(16)}"}
                )
                statuses[answer.status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1

        def valid(stop: threading.Event) -> None:
            # a thread and a client of its own: the flood's loop must not delay the measurement
            with httpx.Client(base_url=api_url, timeout=60) as own:
                while not stop.is_set():
                    start = time.perf_counter()
                    with contextlib.suppress(httpx.HTTPError):
                        own.get("/flow_runs?limit=1", headers={"Authorization": f"Bearer {key}"})
                    latencies.append(time.perf_counter() - start)

        stop = threading.Event()
        measuring = threading.Thread(target=valid, args=(stop,), daemon=True)
        measuring.start()
        await asyncio.gather(*(unknown() for _ in range(n)))
        stop.set()
        measuring.join(60)
    return latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every fault's duration")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between new runs")
    parser.add_argument("--work", type=float, default=5.0, help="seconds each flow works")
    parser.add_argument("--flood", type=int, default=1000, help="concurrent requests with unknown keys")
    args = parser.parse_args()
    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as tmp, private_rabbitmq() as mq, private_postgres() as pg:
        run(args, Path(tmp), mq, pg)
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def run(args: argparse.Namespace, folder: Path, mq: PrivateRabbitMQ, pg: PrivatePostgres) -> None:
    base = Backends(pg.url("postgres"), mq.url("/"), "/", None)
    with cluster(base, mq, folder) as found:
        found.server_env = {}  # Baton's default leases (30 s), not the tests' short ones
        found.start_server()
        (folder / "flows.py").write_text(FLOWS)
        deployment = found.deployment("flows.py:counted")
        worker = found.start_worker("--lease-seconds", "30", "--heartbeat-seconds", "10")
        notes = folder / "notes"
        db = Db(found.backends.database_url)
        stream = Stream(found, deployment, notes, args.work, args.interval)
        stream.start()
        time.sleep(2 * args.work)
        recoveries: dict[str, float | None] = {}

        def fault(name: str, seconds: float, begin: Callable[[], object], end: Callable[[], object]) -> None:
            seconds *= args.scale
            print(f"{name} for {seconds:.0f} s ...", flush=True)
            begin()
            time.sleep(seconds)
            end()
            recoveries[name] = recovery(stream, db, time.monotonic())
            print(
                f"  recovered in {recoveries[name]:.1f} s"
                if recoveries[name] is not None
                else "  not recovered"
            )

        fault("server kill -9", 45, found.kill_server, found.start_server)
        fault("RabbitMQ SIGSTOP", 70, mq.pause, mq.resume)
        fault(
            "worker SIGSTOP",
            45,
            lambda: worker.send_signal(signal.SIGSTOP),
            lambda: worker.send_signal(signal.SIGCONT),
        )
        fault("PostgreSQL stop", 60, pg.stop, pg.start)

        print(f"{args.flood} concurrent requests with unknown keys ...", flush=True)
        flood_started = time.monotonic()
        latencies, statuses = asyncio.run(key_flood(found.api_url, found.key, args.flood))
        recoveries["key flood"] = recovery(stream, db, time.monotonic())
        flood_seconds = time.monotonic() - flood_started

        stream.stop()
        _wait_for(
            "every run to end",
            lambda: all(s in TERMINAL for s in asyncio.run(_states(db)).values()),
            timeout=180,
        )
        report(
            args,
            stream,
            notes,
            db,
            dead_letters(mq, found.backends.vhost),
            recoveries,
            latencies,
            statuses,
            flood_seconds,
        )


def report(
    args: argparse.Namespace,
    stream: Stream,
    notes: Path,
    db: Db,
    dead: int,
    recoveries: dict[str, float | None],
    latencies: list[float],
    statuses: Counter[int],
    flood_seconds: float,
) -> None:
    states = asyncio.run(_states(db))
    lines = [line.split() for line in notes.read_text().splitlines()] if notes.exists() else []
    starts = Counter(run for run, what, _ in lines if what == "start")
    finished = {run for run, what, _ in lines if what == "done"}
    ours = [run for _, run in stream.created]
    crashed_but_finished = [r for r in ours if states.get(r) == "CRASHED" and r in finished]
    stuck = [r for r in ours if states.get(r) not in TERMINAL]
    twice = [r for r in ours if starts[r] > 1]
    print()
    print(f"runs created {len(ours)} (API refused {stream.refused} while down), by state:")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(states.get(r, "?") for r in ours).items())))
    print(f"executions per run: {dict(sorted(Counter(starts[r] for r in ours).items()))}")
    print(f"runs executed more than once: {len(twice)}")
    print(f"finished runs recorded Crashed: {len(crashed_but_finished)}")
    print(f"runs stuck in a non-terminal state: {len(stuck)}")
    print(f"messages in baton.dead: {dead}")
    print("recovery after each fault (s):")
    for name, seconds in recoveries.items():
        print(f"  {name:<20} {'-' if seconds is None else f'{seconds:.1f}'}")
    if latencies:
        print(
            f"key flood ({args.flood} unknown keys, {flood_seconds:.1f} s): valid-key GET p50 "
            f"{percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms "
            f"over {len(latencies)} requests; unknown-key answers {dict(statuses)}"
        )


if __name__ == "__main__":
    main()
