"""The server's CPU per accepted flow-run transition, for two checkouts side by side (issue 11:
the hardening may cost at most 5% of it).

Usage:
    .venv/bin/python bench/transition_cpu.py                      # this checkout, once
    .venv/bin/python bench/transition_cpu.py --against ../old --pairs 6

With --against, each pair runs the other checkout (with its own .venv) and then this one, back to
back, so both see the same machine; the order alternates from pair to pair. Each side starts its
own `baton server start --service api --service tracker --service scheduler` on a database and
vhost of its own, warms up, then drives RUNS runs through Pending -> Running -> Completed over
AMQP RPC with INFLIGHT proposals in flight, and prints the server process's utime + stime per
transition. This machine's speed moves by +-20% within the hour, so only the ratios within pairs
mean anything; the median ratio is the figure.

The measuring side uses only what both checkouts have (d06e21e onwards): `bench/_harness.server`,
`AmqpTracker`, `ProposeState`, `FlowRunCreate`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

RESULT = "server CPU ms per transition:"


def _server_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(runs: int, inflight: int) -> None:
    import tempfile

    from _harness import server_process, test_backends  # the measured checkout's own harness

    # only these three services exist in both checkouts
    with (
        test_backends() as backends,
        tempfile.TemporaryDirectory() as logs,
        server_process(
            backends,
            Path(logs),
            "api",
            "tracker",
            "scheduler",
            BATON_LOG_LEVEL="WARNING",
            BATON_AUTH_REQUIRED="false",
        ) as process,
    ):
        from baton._event_loop import loop_factory

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            before, after, transitions, wall = runner.run(
                _drive(backends.broker_url, process.process.pid, runs, inflight)
            )
    # the runs' creation is in the window as well: per transition, it is one RPC in four
    print(f"{RESULT} {1000 * (after - before) / transitions:.4f} ({transitions / wall:.0f}/s)")


async def _drive(broker_url: str, pid: int, runs: int, inflight: int) -> tuple[float, float, int, float]:
    from baton._transport.amqp import AmqpTracker
    from baton_schemas.envelopes import ProposeState
    from baton_schemas.runs import FlowRunCreate
    from baton_schemas.states import Completed, Pending, Running

    async with await AmqpTracker.connect(broker_url) as tracker:

        async def drive(count: int) -> int:
            created = await asyncio.gather(
                *(tracker.create_flow_run(FlowRunCreate(flow_name="bench-cpu")) for _ in range(count))
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

            return sum(await asyncio.gather(*(lifecycle() for _ in range(inflight))))

        await drive(min(300, runs))  # warm-up: caches, prepared statements, the first statements
        serial = []  # one proposal at a time: the round trip, with nothing to batch with
        for _ in range(100):
            run = await tracker.create_flow_run(FlowRunCreate(flow_name="bench-cpu"))
            for state in (Pending(), Running(), Completed()):
                sent = time.perf_counter()
                await tracker.propose_state(ProposeState(flow_run_id=run.id, state=state))
                serial.append(time.perf_counter() - sent)
        print(f"serial round trip p50 {1000 * statistics.median(serial):.2f} ms")
        await asyncio.sleep(1)
        profile = os.environ.get("BENCH_PY_SPY")  # a file: py-spy samples the server meanwhile
        spy = None
        if profile:
            spy = await asyncio.create_subprocess_exec(
                *("py-spy", "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", profile),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1.5)
        before, started = _server_seconds(pid), time.perf_counter()
        transitions = await drive(runs)
        figures = before, _server_seconds(pid), transitions, time.perf_counter() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        return figures


def _side(tree: Path, runs: int, inflight: int) -> tuple[float, str]:
    """Runs this script's measuring half in `tree`, with that checkout's venv and harness."""
    env = {**os.environ, "PYTHONPATH": str(tree / "bench")}
    out = subprocess.run(
        [
            str(tree / ".venv/bin/python"),
            __file__,
            "--measure",
            "--runs",
            str(runs),
            "--inflight",
            str(inflight),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(RESULT)), None)
    if line is None:
        raise SystemExit(f"{tree}: no figure\n{out.stdout}\n{out.stderr[-3000:]}")
    serial = next((ln for ln in out.stdout.splitlines() if ln.startswith("serial")), "")
    return float(line.split()[5]), f"{line.removeprefix(RESULT).strip()}, {serial}"


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", type=Path, help="another checkout, with its own .venv")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        sys.path.insert(0, str(Path.cwd() / "bench"))
        _measure(args.runs, args.inflight)
        return
    here = Path(__file__).resolve().parents[1]
    if args.against is None:
        print(f"{RESULT} {_side(here, args.runs, args.inflight)[1]} (load {_load()})")
        return
    other = args.against.resolve()
    ratios = []
    for pair in range(args.pairs):
        order = [(other, "other"), (here, "this")] if pair % 2 == 0 else [(here, "this"), (other, "other")]
        figures: dict[str, float] = {}
        texts = []
        for tree, name in order:
            load = _load()
            figures[name], text = _side(tree, args.runs, args.inflight)
            texts.append(f"{name} {text} (load {load})")
        ratios.append(figures["this"] / figures["other"])
        print(f"pair {pair + 1}: {'; '.join(texts)}; ratio {ratios[-1]:.3f}", flush=True)
    print(
        f"this/other, median of {len(ratios)} pairs: {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
