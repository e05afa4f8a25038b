"""The API's latency for requests with a valid key while 1,000 concurrent requests with unknown
keys flood it (a piece of the fault run, bench/faults.py).

    .venv/bin/python bench/api_flood.py [--flood 1000] [--requests 400] [--repeat 3]

Starts its own `baton server start` (a private database and vhost). Each round measures the
valid-key requests (`GET /api/flow_runs?limit=1`, one after another) twice: on a quiet server,
then while `--flood` connections each send request after request with a new unknown key (a
lean keep-alive client in a process of its own, so its event loop never delays the measured
client). Prints p50 and p99 of both, their ratio, the flood's answers per second and how they
ended (failed key checks are throttled, so a flood that waits for its answers is slowed down),
and the server's CPU while flooded. Reported: medians over the rounds, with their spread.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from _cpu import _process_seconds
from _harness import ROOT, percentile, server

BATON = str(ROOT / ".venv" / "bin" / "baton")


def _request(port: int, key: str) -> bytes:
    return (
        f"GET /api/flow_runs?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    ).encode()


async def _one_connection(port: int, stop: asyncio.Event, outcomes: Counter[str]) -> None:
    """Request after request on one keep-alive connection, each with a new unknown key."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            outcomes[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                key = f"baton_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
                writer.write(_request(port, key))
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                outcomes[status] += 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError) as exc:
            outcomes[type(exc).__name__] += 1
        finally:
            writer.close()


async def _valid_latencies(api_url: str, key: str, n: int) -> tuple[list[float], Counter[int]]:
    statuses: Counter[int] = Counter()
    latencies = []
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        await api.get("/flow_runs", params={"limit": 1})  # the connection is open
        for _ in range(n):
            started = time.perf_counter()
            response = await api.get("/flow_runs", params={"limit": 1})
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
    return latencies, statuses


def _flood_process(port: int, n: int, stop: Any, results: Any) -> None:
    """The flood, in a process of its own: its event loop must not delay the measured client.
    Puts (answers so far, time) once every connection has had an answer, and again at `stop`,
    then the outcomes."""

    async def flood() -> None:
        done = asyncio.Event()
        outcomes: Counter[str] = Counter()
        tasks = [asyncio.create_task(_one_connection(port, done, outcomes)) for _ in range(n)]
        while sum(outcomes.values()) < n:
            await asyncio.sleep(0.05)
        results.put((sum(outcomes.values()), time.monotonic()))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        results.put((sum(outcomes.values()), time.monotonic()))
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(dict(outcomes))

    asyncio.run(flood())


@dataclass
class Round:
    quiet: list[float]
    flooded: list[float]
    valid_statuses: Counter[int]
    flood_outcomes: Counter[str]
    flood_rate: float
    server_cores: float  # server CPU seconds per second while flooded


async def one_round(api_url: str, port: int, key: str, pid: int, flood: int, n: int) -> Round:
    quiet, _ = await _valid_latencies(api_url, key, n)
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    flooder = context.Process(target=_flood_process, args=(port, flood, stop, results))
    flooder.start()
    first, began = await asyncio.to_thread(results.get, True, 120)  # in full flood
    before_cpu = _process_seconds([pid])
    flooded, statuses = await _valid_latencies(api_url, key, n)
    cpu = _process_seconds([pid]) - before_cpu
    stop.set()
    last, ended = await asyncio.to_thread(results.get, True, 60)
    outcomes = await asyncio.to_thread(results.get, True, 60)
    await asyncio.to_thread(flooder.join, 60)
    answered = last - first
    return Round(
        quiet, flooded, statuses, Counter(outcomes), answered / (ended - began), cpu / (ended - began)
    )


def _ms(seconds: list[float], q: float) -> float:
    return 1000 * percentile(seconds, q)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ms ({min(values):.2f}-{max(values):.2f})"


async def measure(api_url: str, port: int, key: str, pid: int, args: argparse.Namespace) -> list[Round]:
    return [await one_round(api_url, port, key, pid, args.flood, args.requests) for _ in range(args.repeat)]


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    print(
        f"API under a flood of {args.flood} concurrent unknown-key requests ({args.repeat} rounds, "
        f"{args.requests} valid-key requests per phase; load {os.getloadavg()[0]:.2f})"
    )
    print(
        f"  valid key, quiet:    p50 {_spread([_ms(r.quiet, 0.5) for r in rounds])}, "
        f"p99 {_spread([_ms(r.quiet, 0.99) for r in rounds])}"
    )
    print(
        f"  valid key, flooded:  p50 {_spread([_ms(r.flooded, 0.5) for r in rounds])}, "
        f"p99 {_spread([_ms(r.flooded, 0.99) for r in rounds])}"
    )
    ratios = [_ms(r.flooded, 0.99) / _ms(r.quiet, 0.99) for r in rounds]
    print(f"  p99 flooded / quiet: {statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})")
    print(f"  valid-key answers:   {dict(sum((r.valid_statuses for r in rounds), Counter()))}")
    print(
        f"  flood answers:       {statistics.median(r.flood_rate for r in rounds):.0f}/s, "
        f"{dict(sum((r.flood_outcomes for r in rounds), Counter()))}"
    )
    cores = [r.server_cores for r in rounds]
    print(
        f"  server CPU while flooded: {statistics.median(cores):.2f} cores "
        f"({min(cores):.2f}-{max(cores):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with server() as running:
        key = subprocess.run(
            [BATON, "api-key", "create", "--name", "bench-reader", "--scope", "read"],
            env=running.server.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        pid = running.server.process.pid
        rounds = asyncio.run(measure(running.api_url, running.server.port, key, pid, args))
    report(rounds, args)


if __name__ == "__main__":
    main()
