"""The router in this process, under cProfile: where its CPU goes per event.

The automations and events are bench/router.py's mix. The events are queued on `baton.router`
first; then a RouterService in this process drains them, and the figures are this process's CPU
(which is the router's alone while it drains) per event, the rate, and the top functions by
cumulative and by own time.

Usage: .venv/bin/python bench/router_profile.py [--automations N] [--events N] [--top N] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import resource
import time
from typing import Any

from _cpu import CpuMeter
from _harness import test_backends
from router import automations, event, event_mix, publish

from baton._amqp import Connection
from baton._event_loop import loop_factory
from baton_schemas.deployments import DeploymentCreate
from baton_schemas.pools import WorkPoolCreate
from baton_server.broker.topology import declare_router_queue
from baton_server.context import ServerContext
from baton_server.db.automations import create_automation
from baton_server.db.deployments import upsert_deployment
from baton_server.db.pools import create_pool
from baton_server.router.service import RouterService
from baton_server.settings import ServerSettings


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


async def _later() -> None:
    pass


async def main(backends: Any, n_automations: int, n_events: int, top: int, profile: bool) -> None:
    settings = ServerSettings(database_url=backends.database_url, broker_url=backends.broker_url)
    ctx = await ServerContext.open(settings, name="bench-router-profile")
    try:
        async with ctx.pool.acquire() as conn:
            await create_pool(conn, WorkPoolCreate(name="bench-router"))
            deployment, _ = await upsert_deployment(
                conn,
                DeploymentCreate(
                    name="sink", flow_name="bench-sink", entrypoint="x.py:y", work_pool_name="bench-router"
                ),
            )
            for create in automations(n_automations, str(deployment.id)):
                await create_automation(conn, create)
        await ctx.broker.declare(declare_router_queue)
        items, fire = event_mix(n_events, n_automations)
        items.append(("bench.sentinel", event("bench.sentinel", {"baton.resource.id": "end"})))
        connection = await Connection.open(backends.broker_url, name="bench-router-profile")
        try:
            await publish(await connection.channel(confirms=True), items)
        finally:
            await connection.close()

        router = RouterService(ctx)
        consume = router.consumer.start
        router.consumer.start = _later  # type: ignore[method-assign]  # the index loads first
        await router.start()
        profiler = cProfile.Profile()
        meter = CpuMeter(os.getpid())
        before = meter.sample()
        cpu, started = cpu_seconds(), time.perf_counter()
        if profile:
            profiler.enable()
        try:
            await consume()
            while not await ctx.pool.fetchval(
                """SELECT count(*) FROM firings f JOIN automations a ON a.id = f.automation_id
                   WHERE a.name = 'bench-sentinel'"""
            ):
                await asyncio.sleep(0.02)
        finally:
            profiler.disable()
            wall, used = time.perf_counter() - started, cpu_seconds() - cpu
            after = meter.sample()
            await router.stop()
        fired = await ctx.pool.fetchval("SELECT count(*) FROM firings") - 1
        total = len(items)
        print(
            f"{n_automations} automations, {total} events: {total / wall:.0f} events/s, "
            f"router CPU {1000 * used / total:.3f} ms per event "
            f"({'under cProfile' if profile else 'no profiler'}), "
            f"{fired} firings (expected {fire}), {router.applier.batches} batches"
        )
        print(f"  {CpuMeter.per_op(before, after, total)} (server and bench client = this process)")
        if profile:
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
                print(out.getvalue())
    finally:
        await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--automations", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    with test_backends() as backends, asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main(backends, args.automations, args.events, args.top, not args.no_profile))
