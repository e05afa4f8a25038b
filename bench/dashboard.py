"""The dashboard with a big store: time to first byte and to a complete page, in Chromium, for the
runs list and a run's page; the server's CPU per second of an open tab, at idle and while runs go
by (created over HTTP, moved Pending -> Running -> Completed through the tracker, no workers).

Usage: .venv/bin/python bench/dashboard.py [--runs 100000] [--task-runs 1000000] [--samples 50]
       [--rate 50] [--seconds 20]
The runs and task runs are written straight into the tables (generate_series), then the real
`baton server start` serves them to Debian's Chromium, driven by Playwright, signed in with a key.
Target: p95 <= 300 ms to a complete page for both pages, with 100,000 runs and 1,000,000 task
runs stored.

Figures per page, each from the page's own clock (its navigation's start): the document's first
byte; the first byte of the slowest API call the page makes (the server's share); the complete
page, when the last of the page's data is drawn (a MutationObserver notes the moment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import dataclass

import asyncpg
import httpx
from _cpu import CpuMeter
from _harness import RunningServer, percentile, server
from playwright.async_api import Browser, Page, async_playwright
from tests.support.bulk_rows import fill
from tests.support.processes import BATON, baton_env

from baton._transport.amqp import AmqpTracker
from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Completed, Pending, Running

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

# the slowest of the page's API calls to answer its first byte (live streams left out): [ms, path]
API_FIRST_BYTE = """() => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/api/") && !e.name.includes("/stream"))
    .map((e) => [e.responseStart - e.startTime, new URL(e.name).pathname])
    .reduce((a, b) => (b[0] > a[0] ? b : a), [0, ""])"""
DOCUMENT_FIRST_BYTE = """() => { const n = performance.getEntriesByType("navigation")[0];
    return n.responseStart - n.startTime; }"""
# what each page draws last, by the start of its hash: the run page's before the runs list's
READY = {
    "#/runs/": ["#task-graph", "#timeline"],
    "#/runs": ["#runs tr[data-run]:nth-child(50)", "#histogram .histogram"],
}
# before any of the page's scripts: notes when all of its READY selectors first match
WATCH_READY = (
    f"const READY = {json.dumps(READY)};\n"
    + """(() => {
  const ready = READY;
  const key = Object.keys(ready).find((start) => location.hash.startsWith(start));
  if (!key) return;
  new MutationObserver((_, observer) => {
    if (ready[key].every((s) => document.querySelector(s))) {
      window.__complete = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();"""
)


def admin_key(srv: RunningServer) -> str:
    made = subprocess.run(
        [BATON, "api-key", "create", "--name", "bench-dashboard", "--scope", "admin"],
        env=baton_env(srv.backends),
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


async def load_store(srv: RunningServer, runs: int, task_runs: int) -> str:
    conn = await asyncpg.connect(srv.backends.database_url)
    try:
        started = time.perf_counter()
        filled = await fill(conn, runs=runs, task_runs=task_runs, days=7)
        took = time.perf_counter() - started
        counted = await conn.fetchval("SELECT count(*) FROM task_runs")
        print(f"stored {runs} runs and {counted} task runs in {took:.1f} s")
        return str(filled.newest_run)
    finally:
        await conn.close()


async def sign_in(page: Page, base: str, key: str) -> None:
    await page.goto(f"{base}/ui/login")
    await page.fill("input[name=key]", key)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#who:not(:empty)")


async def page_times(page: Page, url: str, samples: int) -> dict[str, list[float]]:
    """Each sample a fresh load of the page (from a blank one), until its data is drawn."""
    times: dict[str, list[float]] = {"document first byte": [], "API first byte": [], "complete": []}
    slowest: dict[str, int] = {}
    for n in range(samples + 5):
        await page.goto("about:blank")
        await page.goto(url)
        await page.wait_for_function("() => window.__complete !== undefined")
        if n < 5:
            continue  # warm-up: the server's caches, the browser's module cache
        times["complete"].append(await page.evaluate("() => window.__complete"))
        times["document first byte"].append(await page.evaluate(DOCUMENT_FIRST_BYTE))
        ms, path = await page.evaluate(API_FIRST_BYTE)
        times["API first byte"].append(ms)
        slowest[path] = slowest.get(path, 0) + 1
    print(f"  the slowest API call, by how often: {sorted(slowest.items(), key=lambda kv: -kv[1])}")
    return times


def report(name: str, times: dict[str, list[float]]) -> None:
    parts = [
        f"{what} p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms"
        for what, ms in times.items()
    ]
    print(f"{name} (n={len(times['complete'])}): " + "; ".join(parts))


@dataclass
class Driven:
    completed: int = 0  # runs taken to Completed so far


async def drive_runs(srv: RunningServer, key: str, rate: float, stop: asyncio.Event, driven: Driven) -> None:
    """`rate` runs a second: created over HTTP, then Pending, Running, Completed by RPC to the
    tracker, as a worker and its flow would (without starting any process)."""

    async def lifecycle(http: httpx.AsyncClient, tracker: AmqpTracker) -> None:
        response = await http.post("/flow_runs", json={"flow_name": "bench-live", "tags": ["live"]})
        run_id = response.raise_for_status().json()["id"]
        for state in (Pending(), Running(), Completed()):
            await tracker.propose_state(ProposeState(flow_run_id=run_id, state=state))
        driven.completed += 1

    async with (
        httpx.AsyncClient(
            base_url=srv.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http,
        await AmqpTracker.connect(srv.backends.broker_url) as tracker,
    ):
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        n = 0
        while not stop.is_set():
            task = asyncio.create_task(lifecycle(http, tracker))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)


async def cpu_per_second(srv: RunningServer, key: str, seconds: float, rate: float) -> tuple[float, float]:
    """The server's CPU seconds per second over `seconds`, and the runs completed per second."""
    meter = CpuMeter(srv.server.process.pid)
    stop = asyncio.Event()
    driven = Driven()
    driver = asyncio.create_task(drive_runs(srv, key, rate, stop, driven)) if rate else None
    await asyncio.sleep(2)  # settle: the driver's connections, the page's first re-reads
    before, first = meter.sample(), driven.completed
    await asyncio.sleep(seconds)
    after, last = meter.sample(), driven.completed
    stop.set()
    if driver:
        await driver
    took = after.wall - before.wall
    return (after.seconds["server"] - before.seconds["server"]) / took, (last - first) / took


async def tab_cpu(srv: RunningServer, browser: Browser, key: str, seconds: float, rate: float) -> None:
    base = srv.api_url.removesuffix("/api")
    for driven in (0.0, rate):
        context = await browser.new_context()
        page = await context.new_page()
        await sign_in(page, base, key)
        await page.goto("about:blank")
        without, _ = await cpu_per_second(srv, key, seconds, driven)
        await page.goto(f"{base}/#/runs")
        await page.wait_for_selector("[data-live=on]")
        with_tab, achieved = await cpu_per_second(srv, key, seconds, driven)
        await context.close()
        what = f"{achieved:.0f} runs/s going by" if driven else "idle"
        print(
            f"server CPU, {what}: {with_tab * 1000:.0f} ms/s with the runs list open, "
            f"{without * 1000:.0f} ms/s with no tab: the tab costs {(with_tab - without) * 1000:.0f} ms/s"
        )


async def main(srv: RunningServer, args: argparse.Namespace) -> None:
    run_id = await load_store(srv, args.runs, args.task_runs)
    key = admin_key(srv)
    base = srv.api_url.removesuffix("/api")
    meter = CpuMeter(srv.server.process.pid)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            await context.add_init_script(WATCH_READY)
            page = await context.new_page()
            await sign_in(page, base, key)
            before = meter.sample()
            runs = await page_times(page, f"{base}/#/runs", args.samples)
            report("runs list (50 rows, histogram)", runs)
            one = await page_times(page, f"{base}/#/runs/{run_id}", args.samples)
            report(f"a run's page ({args.task_runs // max(args.runs, 1)} task runs)", one)
            after = meter.sample()
            print(f"  {CpuMeter.per_op(before, after, 2 * (args.samples + 5))} (per page load)")
            await context.close()
            await tab_cpu(srv, browser, key, args.seconds, args.rate)
        finally:
            await browser.close()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--task-runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50, help="page loads of each page")
    parser.add_argument("--rate", type=float, default=50.0, help="runs a second, for the tab's CPU")
    parser.add_argument("--seconds", type=float, default=20.0, help="each CPU window")
    return parser.parse_args()


if __name__ == "__main__":
    options = arguments()
    with server(BATON_LOG_LEVEL="WARNING") as running:
        asyncio.run(main(running, options))
