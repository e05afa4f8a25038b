"""Per-task overhead of the SDK over the bare function with a real server, over HTTP and AMQP.

    .venv/bin/python bench/sdk_server.py [--tasks 2000] [--repeat 5] [--flows 51]

Starts its own `baton server start` (a private database and vhost). For each transport prints
medians of:
- per task, in the flow: sequential task calls, `.submit()`, `.map()` (the time inside the flow
  function, minus the bare calls): what the engine adds to the user's code;
- per task, whole flow: the flow call from start to return, which includes delivering every
  task state to the server before the run's final state is proposed, minus a no-op flow;
- a no-op flow: its call, and from the call until the API shows its final state (measured
  first, on a quiet server);
- `import baton` and a first no-op flow in a fresh process (connecting included), over bare
  python.
Console lines are formatted but written to /dev/null; `quiet` rows have the console at WARNING
(no per-task "Finished in state" lines, so no logs to ship).
Targets: <= 1 ms per sequential task, a no-op flow stored in <= 50 ms.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from uuid import UUID

import httpx
from _harness import ROOT, RunningServer, server
from sdk_overhead import bare, median_of, noop_task

from baton import _runtime, flow, get_run_context
from baton._settings import ClientSettings

BATON = str(ROOT / ".venv" / "bin" / "baton")


@flow
def sequential_flow(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        noop_task(i)
    return time.perf_counter() - started


@flow
def submit_flow(n: int) -> float:
    started = time.perf_counter()
    futures = [noop_task.submit(i) for i in range(n)]
    for future in futures:
        future.result()
    return time.perf_counter() - started


@flow
def map_flow(n: int) -> float:
    started = time.perf_counter()
    noop_task.map(range(n)).result()
    return time.perf_counter() - started


@flow
def empty_flow() -> UUID:
    return get_run_context().flow_run.id  # type: ignore[union-attr]


def inside_and_whole(fn: Callable[[int], float], n: int) -> tuple[float, float]:
    """(seconds inside the flow function, seconds of the whole flow call)."""
    started = time.perf_counter()
    inside = fn(n)
    return inside, time.perf_counter() - started


def noop_flow_stored(api: httpx.Client) -> tuple[float, float]:
    """(seconds of the call, seconds from the call until the API shows the final state)."""
    started = time.perf_counter()
    run_id = empty_flow()
    returned = time.perf_counter()
    while True:
        state = api.get(f"/flow_runs/{run_id}").json()["state"]
        if state["type"] == "COMPLETED":
            return returned - started, time.perf_counter() - started
        if state["type"] in ("FAILED", "CRASHED", "CANCELLED"):
            raise RuntimeError(f"the no-op flow ended {state['name']}")


def first_flow(env: dict[str, str], repeat: int) -> float:
    """`import baton` and a first no-op flow run in a fresh process, over bare python."""

    def wall(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    code = "from baton import flow\n@flow\ndef first(): pass\nfirst()"
    python_alone = statistics.median(wall("pass") for _ in range(repeat))
    return statistics.median(wall(code) for _ in range(repeat)) - python_alone


def configure(running: RunningServer, key: str, transport: str, home: str) -> None:
    settings = ClientSettings(
        api_url=running.api_url,
        api_key=key,
        broker_url=running.backends.broker_url if transport == "amqp" else None,
        results_dir=f"{home}/results",
    )
    _runtime.configure(settings=settings)
    console = logging.getLogger("baton").handlers[0]
    assert isinstance(console, logging.StreamHandler)
    console.setStream(open(os.devnull, "w"))  # kept for the life of the process


def measure(
    running: RunningServer, key: str, transport: str, n: int, repeat: int, flows: int
) -> list[tuple[str, float]]:
    home = tempfile.mkdtemp(prefix="baton-bench-")
    configure(running, key, transport, home)
    bare_s = median_of(repeat, lambda: bare(n))
    headers = {"Authorization": f"Bearer {key}"}
    rows: list[tuple[str, float]] = []
    with httpx.Client(base_url=running.api_url, headers=headers, timeout=10) as api:
        noop_flow_stored(api)  # connect, register the flow
        # first, while the server has nothing else to do
        timings = [noop_flow_stored(api) for _ in range(flows)]
        empty_call = statistics.median(t[0] for t in timings)
        rows.append(("no-op flow, call", empty_call))
        rows.append(("no-op flow, call to state stored", statistics.median(t[1] for t in timings)))
    for label, level in (("", logging.INFO), (" quiet", logging.WARNING)):
        logging.getLogger("baton").setLevel(level)
        for name, fn in (("sequential", sequential_flow), ("submit", submit_flow), ("map", map_flow)):
            fn(50)  # warm up threads and caches
            runs = [inside_and_whole(fn, n) for _ in range(repeat)]
            inside = statistics.median(r[0] for r in runs)
            whole = statistics.median(r[1] for r in runs)
            rows.append((f"{name}{label}, in the flow", (inside - bare_s) / n))
            rows.append((f"{name}{label}, whole flow", (whole - empty_call - bare_s) / n))
    logging.getLogger("baton").setLevel(logging.INFO)
    _runtime.reset()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--flows", type=int, default=51, help="no-op flows timed")
    parser.add_argument("--transport", choices=["http", "amqp"], action="append")
    args = parser.parse_args()
    n, repeat = args.tasks, args.repeat

    with server() as running:
        key = subprocess.run(
            [BATON, "api-key", "create", "--name", "bench", "--scope", "worker", "--scope", "read"],
            env=running.server.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for transport in args.transport or ["http", "amqp"]:
            rows = measure(running, key, transport, n, repeat, args.flows)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
            env.update(BATON_API_URL=running.api_url, BATON_API_KEY=key)
            env["BATON_HOME"] = tempfile.mkdtemp(prefix="baton-bench-")
            if transport == "amqp":
                env["BATON_BROKER_URL"] = running.backends.broker_url
            rows.append(("import baton + first no-op flow", first_flow(env, max(repeat, 7))))
            print(f"baton SDK, server-backed over {transport}: {n} tasks (median of {repeat} runs), ", end="")
            print(f"{args.flows} no-op flows")
            for label, seconds in rows:
                print(f"  {label:<34} {seconds * 1e3:9.3f} ms")


if __name__ == "__main__":
    main()
