"""Router figures: event published over AMQP -> run created, and -> flow code started on a warm
process worker (p50, p99); one router process's events/s and CPU per event with 1,000 and with
10,000 automations, next to the raw consume-and-ack ceiling of the same messages measured in
the same run; how long after its window closes a proactive trigger fires; the router's RSS with
10,000 automations and --live-keys (100,000) open for_each windows.

Usage: .venv/bin/python bench/router.py [--events N] [--latency-events N] [--live-keys N]
Targets (issue 15): created p99 <= 50 ms; started p50 <= 100 ms, p99 <= 500 ms; >= 3,000
events/s with 10,000 automations; a proactive trigger fires <= 1 s after its window closes.

Throughput: the events are queued on `baton.router` first (no router running), then `baton
server start --service router` drains them; the rate runs from the router's start (its index
loaded, consuming) to the firing of a sentinel event published last. The automations mix exact
names, `*` wildcards, for_each keys with a threshold and label matches; about 1% of the events
fire (run-deployment).
The event mix: 1% fire an exact-name automation; 20% count towards for_each thresholds on keys
of their own (each a live for_each window in PostgreSQL); 20% match a wildcard by name but not
its labels; 20% match a label automation's name but not its labels; 39% no automation names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from _cpu import CpuMeter
from _harness import percentile, server_process, test_backends
from events import consume_ceiling

from baton._amqp import PERSISTENT, Channel, Connection, Properties
from baton._event_loop import loop_factory
from baton_schemas.automations import AutomationCreate
from baton_server.db.automations import create_automation
from baton_server.db.pool import create_pool

FLOW = """
import time
from pathlib import Path

from baton import flow


@flow(name="bench-latency")
def started(order: str) -> None:
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / order).write_text(repr(time.time()))
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def ms(name: str, seconds: list[float], expected: int) -> str:
    values = [s * 1000 for s in seconds]
    if not values:
        return f"{name}: none of {expected} seen"
    return (
        f"{name}: p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 0.99):.1f} ms "
        f"({len(values)} of {expected}; {load()})"
    )


def event(name: str, resource: dict[str, str], **payload: Any) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    body = {
        "id": event_id,
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": resource,
        "payload": payload,
    }
    return event_id, orjson.dumps(body)


async def publish(channel: Channel, items: list[tuple[str, tuple[str, bytes]]]) -> None:
    window: list[asyncio.Future[None]] = []
    for routing_key, (event_id, body) in items:
        props = Properties(content_type="application/json", message_id=event_id, delivery_mode=PERSISTENT)
        confirm = channel.publish("baton.events", routing_key, body, props, mandatory=True)
        assert confirm is not None
        window.append(confirm)
        if len(window) >= 1000:
            await asyncio.gather(*window)
            window = []
    await asyncio.gather(*window)


# --- throughput ------------------------------------------------------------------------------


def automations(n: int, deployment_id: str) -> list[AutomationCreate]:
    """n automations: 40% exact names, 20% wildcards, 20% for_each with a threshold, 20% labels."""
    action = {
        "type": "run-deployment",
        "deployment": deployment_id,
        "parameters": {"order": "{{ event.id }}"},
    }
    made = []
    for i in range(n):
        kind = i % 5
        if kind in (0, 1):
            trigger: dict[str, Any] = {"expect": [f"bench.e{i}"]}
        elif kind == 2:
            trigger = {"expect": [f"bench.w{i}.*"], "match": {"shop": "s1"}}
        elif kind == 3:
            trigger = {
                "expect": [f"bench.f{i}"],
                "for_each": ["baton.resource.id"],
                "threshold": 5,
                "within": 3600,
            }
        else:
            trigger = {"expect": [f"bench.l{i}"], "match": {"shop": f"s{i}", "baton.resource.id": "shop.*"}}
        made.append(
            AutomationCreate.model_validate({"name": f"bench-{i}", "trigger": trigger, "actions": [action]})
        )
    made.append(
        AutomationCreate.model_validate(
            {"name": "bench-sentinel", "trigger": {"expect": ["bench.sentinel"]}, "actions": [action]}
        )
    )
    return made


def event_mix(n: int, automations: int) -> tuple[list[tuple[str, tuple[str, bytes]]], int]:
    """The events, and how many should fire."""
    items = []
    fire = 0
    per_kind = max(1, automations // 5)
    for i in range(n):
        r = i % 100
        j = (i // 100) % per_kind * 5  # an automation index of kind 0
        if r == 0:
            name, labels = f"bench.e{j}", {"baton.resource.id": f"shop.{i}"}
            fire += 1
        elif r <= 20:
            name, labels = f"bench.f{j + 3}", {"baton.resource.id": f"key.{i}"}
        elif r <= 40:
            name, labels = f"bench.w{j + 2}.x", {"baton.resource.id": f"shop.{i}", "shop": "s2"}
        elif r <= 60:
            name, labels = f"bench.l{j + 4}", {"baton.resource.id": f"shop.{i}", "shop": "nope"}
        else:
            name, labels = f"other.{r}", {"baton.resource.id": f"shop.{i}"}
        items.append((name, event(name, labels, n=i)))
    return items, fire


async def live_windows(conn: Any, keys: int) -> None:
    """`keys` open for_each windows, spread over the for_each automations, as a long-running
    installation has them (order ids, hosts) before the burst."""
    await conn.execute(
        """WITH each AS (
               SELECT id, row_number() OVER (ORDER BY id) - 1 AS n, count(*) OVER () AS total
               FROM automations WHERE trigger->'for_each' IS NOT NULL
                 AND jsonb_array_length(trigger->'for_each') > 0)
           INSERT INTO trigger_buckets (automation_id, trigger_path, bucket_key, proactive,
               start_at, end_at, count)
           SELECT each.id, '', 'live-' || g, false, now(), now() + interval '1 hour', 1
           FROM generate_series(0, $1 - 1) AS g JOIN each ON each.n = g % each.total""",
        keys,
    )


async def throughput(
    backends: Any,
    logs: Path,
    deployment_id: str,
    n_automations: int,
    n_events: int,
    ceiling: float,
    live_keys: int = 0,
) -> None:
    pool = await create_pool(backends.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM firings")
            await conn.execute("DELETE FROM automations")
            await conn.execute("DELETE FROM trigger_buckets")
            await conn.execute("DELETE FROM router_events")
            for create in automations(n_automations, deployment_id):
                await create_automation(conn, create)
            await live_windows(conn, live_keys)
        items, fire = event_mix(n_events, n_automations)
        items.append(("bench.sentinel", event("bench.sentinel", {"baton.resource.id": "end"})))
        connection = await Connection.open(backends.broker_url, name="bench-router-publisher")
        try:
            channel = await connection.channel(confirms=True)
            await publish(channel, items)
            total = len(items)
            with server_process(backends, logs, "router", BATON_LOG_LEVEL="INFO") as router:
                meter = CpuMeter(router.process.pid)
                before = meter.sample()
                started = time.perf_counter()  # the router is running: its index loaded, consuming
                while not await pool.fetchval(
                    """SELECT count(*) FROM firings f JOIN automations a ON a.id = f.automation_id
                       WHERE a.name = 'bench-sentinel'"""
                ):
                    await asyncio.sleep(0.02)
                now = time.perf_counter()
                after = meter.sample()
                rss = router.rss_mb()
            fired = await pool.fetchval("SELECT count(*) FROM firings") - 1
            keys = await pool.fetchval("SELECT count(*) FROM trigger_buckets")
            rate = total / max(now - started, 1e-6)
            print(
                f"{n_automations} automations, {n_events} events: {rate:.0f} events/s "
                f"({100 * rate / ceiling:.0f}% of the ceiling), {fired} firings (expected {fire}); {load()}"
            )
            print(f"  {CpuMeter.per_op(before, after, total)} (server = the router process)")
            print(
                f"  router RSS {rss:.1f} MB with {n_automations} automations,"
                f" {keys} live windows in PostgreSQL"
            )
        finally:
            await connection.close()
    finally:
        await pool.close()


# --- latency -----------------------------------------------------------------------------------


async def latency(backends: Any, logs: Path, api_url: str, folder: Path, n: int, rate: float) -> None:
    import subprocess

    from _harness import ROOT

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        pool_name = f"latency-{uuid.uuid4().hex[:6]}"
        assert (
            await http.post("/work_pools", json={"name": pool_name, "type": "process"})
        ).status_code == 201
        (folder / "flows.py").write_text(textwrap.dedent(FLOW))
        deployment = (
            await http.post(
                "/deployments",
                json={
                    "name": "latency",
                    "flow_name": "bench-latency",
                    "entrypoint": "flows.py:started",
                    "work_pool_name": pool_name,
                },
            )
        ).json()
        made = await http.post(
            "/automations",
            json={
                "name": "bench-latency",
                "trigger": {"expect": ["bench.latency"]},
                "actions": [
                    {
                        "type": "run-deployment",
                        "deployment": deployment["id"],
                        "parameters": {"order": "{{ event.payload.order }}"},
                    }
                ],
            },
        )
        assert made.status_code == 201, made.text
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update(BATON_API_URL=api_url, BATON_BROKER_URL=backends.broker_url, BATON_LOG_LEVEL="INFO")
    worker_log = (logs / "worker.log").open("w")
    worker = subprocess.Popen(  # noqa: ASYNC220 (started once, before the figures)
        [
            str(ROOT / ".venv/bin/baton"),
            "worker",
            "start",
            "--pool",
            pool_name,
            "--prestart",
            "2",
            "--limit",
            "4",
        ],
        cwd=folder,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    db = await asyncpg.connect(backends.database_url)
    connection = await Connection.open(backends.broker_url, name="bench-latency")
    try:
        deadline = time.monotonic() + 60
        while "serving pool" not in (logs / "worker.log").read_text():
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # the router's index has the automation; the worker's processes are warm
        channel = await connection.channel(confirms=True)
        sent: dict[str, float] = {}
        for i in range(n):
            order = f"o{i}"
            sent[order] = time.time()
            await publish(
                channel,
                [
                    (
                        "bench.latency",
                        event("bench.latency", {"baton.resource.id": f"shop.{order}"}, order=order),
                    )
                ],
            )
            await asyncio.sleep(1 / rate)
        out = folder / "out"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(out.glob("o*")) if out.exists() else []) < n:
            await asyncio.sleep(0.2)
        rows = await db.fetch(
            """SELECT parameters->>'order' AS order, extract(epoch FROM created) AS created
               FROM flow_runs WHERE deployment_id = $1""",
            uuid.UUID(deployment["id"]),
        )
        created = [float(r["created"]) - sent[r["order"]] for r in rows if r["order"] in sent]
        started = [float((out / o).read_text()) - t for o, t in sent.items() if (out / o).exists()]
        print(ms(f"published over AMQP -> run created ({rate:g} events/s)", created, n))
        print(ms("published over AMQP -> flow code started on a warm process worker", started, n))
        stages = await db.fetch(
            """SELECT fr.parameters->>'order' AS order, s.type, extract(epoch FROM min(s.timestamp)) AS at
               FROM states s JOIN flow_runs fr ON fr.id = s.flow_run_id
               WHERE fr.deployment_id = $1 AND s.type IN ('PENDING', 'RUNNING')
               GROUP BY 1, 2""",
            uuid.UUID(deployment["id"]),
        )
        for stage in ("PENDING", "RUNNING"):
            took = [
                float(r["at"]) - sent[r["order"]] for r in stages if r["type"] == stage and r["order"] in sent
            ]
            if took:
                print(f"  published -> {stage.title()}: p50 {1000 * statistics.median(took):.1f} ms")
        await proactive_delay(db, channel, api_url)
    finally:
        worker.terminate()
        worker.wait(30)
        worker_log.close()
        await connection.close()
        await db.close()


async def proactive_delay(db: asyncpg.Connection[Any], channel: Channel, api_url: str, n: int = 20) -> None:
    """How long after its window closes a proactive trigger fires (target <= 1 s)."""
    within = 5.0
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        made = await http.post(
            "/automations",
            json={
                "name": "bench-proactive",
                "trigger": {
                    "posture": "Proactive",
                    "after": ["bench.p.start"],
                    "expect": ["bench.p.done"],
                    "for_each": ["baton.resource.id"],
                    "within": within,
                },
                "actions": [
                    {"type": "emit-event", "event": "bench.p.late", "resource": {"baton.resource.id": "x"}}
                ],
            },
        )
        assert made.status_code == 201, made.text
        automation_id = uuid.UUID(made.json()["id"])
    await asyncio.sleep(2.0)  # in the index
    opened: dict[str, float] = {}
    for i in range(n):
        key = f"job.{i}"
        opened[key] = time.time()
        await publish(channel, [("bench.p.start", event("bench.p.start", {"baton.resource.id": key}))])
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + within + 30
    while time.monotonic() < deadline:
        if await db.fetchval("SELECT count(*) FROM firings WHERE automation_id = $1", automation_id) >= n:
            break
        await asyncio.sleep(0.1)
    rows = await db.fetch(
        "SELECT bucket_key, extract(epoch FROM created) AS created FROM firings WHERE automation_id = $1",
        automation_id,
    )
    delays = [
        float(r["created"]) - (opened[r["bucket_key"]] + within) for r in rows if r["bucket_key"] in opened
    ]
    if not delays and rows:
        print(f"  (proactive firings' bucket keys: {[r['bucket_key'] for r in rows[:3]]})")
    print(ms(f"proactive window closed -> fired (within {within:g}s, {n} keys)", delays, n))


async def main(backends: Any, logs: Path, events: int, latency_events: int, live_keys: int) -> None:
    print(load())
    with server_process(
        backends, logs, "api", "tracker", "scheduler", BATON_LOG_LEVEL="WARNING", BATON_AUTH_REQUIRED="false"
    ) as api:
        async with httpx.AsyncClient(base_url=api.api_url, timeout=30) as http:
            assert (await http.post("/work_pools", json={"name": "bench-router"})).status_code == 201
            deployment = (
                await http.post(
                    "/deployments",
                    json={
                        "name": "sink",
                        "flow_name": "bench-sink",
                        "entrypoint": "x.py:y",
                        "work_pool_name": "bench-router",
                    },
                )
            ).json()
        ceiling = await consume_ceiling(backends.broker_url, events)
        print(
            "raw consume-and-ack ceiling (baton._amqp, quorum queue, prefetch 2000): "
            f"{ceiling:.0f} msgs/s; {load()}"
        )
        with server_process(backends, logs, "router", BATON_LOG_LEVEL="INFO"):
            pass  # declares the router's queue, so that the events queue up before a router runs
        for n in (1000, 10_000):
            live = live_keys if n == 10_000 else 0
            await throughput(backends, logs, deployment["id"], n, events, ceiling, live)
        conn = await asyncpg.connect(backends.database_url)
        await conn.execute("DELETE FROM automations")
        await conn.close()
        with server_process(backends, logs, "router", BATON_LOG_LEVEL="INFO"):
            await latency(backends, logs, api.api_url, logs, latency_events, rate=10)
    print(load())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument(
        "--live-keys", type=int, default=100_000, help="open for_each windows before the 10,000 run"
    )
    args = parser.parse_args()
    with (
        test_backends() as backends,
        tempfile.TemporaryDirectory() as logs,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        runner.run(main(backends, Path(logs), args.events, args.latency_events, args.live_keys))
