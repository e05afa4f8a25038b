"""Event figures: events/s into the store over AMQP (next to the raw consume-and-ack ceiling of
the same messages, measured in the same run) and over HTTP in batches of 100; published ->
stored and published -> on a live stream at 1,000 events/s, p50 and p99; the API process's RSS
after a burst of 100,000 events over HTTP.

Usage: .venv/bin/python bench/events.py [--events N]
Targets on a 2-core machine: >= 10,000 events/s stored over AMQP when quiet; p99 <= 50 ms at
1,000 events/s.

The AMQP figure isolates the store: the events are queued first (the API, tracker and scheduler
run in one process, the events service is not running), then `baton server start --service
events` starts and drains them. The ceiling drains as many messages of the same size from a
queue of their own with Baton's AMQP client, acking each, doing nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
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

from baton._amqp import PERSISTENT, Channel, Connection, Delivery, Properties
from baton._event_loop import loop_factory

EVENT_BODY_PAYLOAD = {"order": 42, "total": 18.5, "items": ["a", "b", "c"]}


def event_body(name: str, i: int) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    body = orjson.dumps(
        {
            "id": event_id,
            "occurred": datetime.now(UTC).isoformat(),
            "event": name,
            "resource": {"baton.resource.id": f"shop.order.{i}", "shop": "main"},
            "related": [{"baton.resource.id": "shop.main", "baton.resource.role": "shop"}],
            "payload": EVENT_BODY_PAYLOAD,
        }
    )
    return event_id, body


async def publish_all(channel: Channel, name: str, n: int, *, queue: str | None = None) -> list[str]:
    """Publish n events (to baton.events, or straight to `queue`), confirms awaited in windows."""
    ids: list[str] = []
    window: list[asyncio.Future[None]] = []
    for i in range(n):
        event_id, body = event_body(name, i)
        ids.append(event_id)
        props = Properties(content_type="application/json", message_id=event_id, delivery_mode=PERSISTENT)
        exchange, key = ("", queue) if queue else ("baton.events", name)
        confirm = channel.publish(exchange, key, body, props, mandatory=True)
        assert confirm is not None
        window.append(confirm)
        if len(window) >= 1000:
            await asyncio.gather(*window)
            window = []
    await asyncio.gather(*window)
    return ids


async def consume_ceiling(url: str, n: int) -> float:
    """Messages/s a bare consumer drains and acks from a quorum queue of the same messages."""
    connection = await Connection.open(url, name="bench-ceiling")
    try:
        channel = await connection.channel(confirms=True)
        queue = f"bench.ceiling.{uuid.uuid4().hex[:6]}"
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        await publish_all(channel, "bench.ceiling", n, queue=queue)
        consumer = await connection.channel(prefetch=2000)
        done = asyncio.Event()
        seen = 0
        started = 0.0

        def ack(message: Delivery) -> None:
            nonlocal seen, started
            if seen == 0:
                started = time.perf_counter()
            seen += 1
            message.ack()
            if seen >= n:
                done.set()

        await consumer.consume(queue, ack)
        await done.wait()
        rate = (n - 1) / (time.perf_counter() - started)
        await channel.delete_queue(queue)
        return rate
    finally:
        await connection.close()


async def stored_count(conn: asyncpg.Connection[Any]) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events WHERE event = 'bench.amqp'"))


async def amqp_throughput(backends: Any, logs: Path, n: int) -> tuple[float, str]:
    connection = await Connection.open(backends.broker_url, name="bench-publisher")
    conn = await asyncpg.connect(backends.database_url)
    try:
        channel = await connection.channel(confirms=True)
        await publish_all(channel, "bench.amqp", n)  # queued: no events service yet
        with server_process(backends, logs, "events", BATON_LOG_LEVEL="INFO") as events:
            meter = CpuMeter(events.process.pid)
            before = meter.sample()
            first_at: float | None = None
            first_count = 0
            while True:
                count = await stored_count(conn)
                now = time.perf_counter()
                if count and first_at is None:
                    first_at, first_count = now, count
                if count >= n:
                    break
                await asyncio.sleep(0.05)
            after = meter.sample()
        assert first_at is not None
        rate = (n - first_count) / max(now - first_at, 1e-6)
        return rate, CpuMeter.per_op(before, after, n)
    finally:
        await conn.close()
        await connection.close()


async def http_throughput(
    api_url: str, conn: asyncpg.Connection[Any], n: int, in_flight: int = 8
) -> tuple[float, float]:
    """Accepted/s and stored/s, POSTing batches of 100."""
    batches = [
        [
            {
                "event": "bench.http",
                "resource": {"baton.resource.id": f"shop.order.{b}.{i}"},
                "payload": EVENT_BODY_PAYLOAD,
            }
            for i in range(100)
        ]
        for b in range(n // 100)
    ]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:

        async def post() -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                response = await client.post(
                    "/events", content=orjson.dumps(batch), headers={"content-type": "application/json"}
                )
                assert response.status_code == 202, response.text

        started = time.perf_counter()
        await asyncio.gather(*(post() for _ in range(in_flight)))
        accepted = time.perf_counter() - started
    while (
        int(await conn.fetchval("SELECT count(*) FROM events WHERE event = 'bench.http'"))
        < len(batches) * 100
    ):
        await asyncio.sleep(0.05)
    stored = time.perf_counter() - started
    return len(batches) * 100 / accepted, len(batches) * 100 / stored


async def latency(backends: Any, api_url: str, rate: int, seconds: float) -> tuple[list[float], list[float]]:
    """Published -> stored (the commit's NOTIFY) and published -> on a live stream, in seconds."""
    sent: dict[str, float] = {}
    stored_at: dict[str, float] = {}
    streamed_at: dict[str, float] = {}
    listener = await asyncpg.connect(backends.database_url)
    reader = await asyncpg.connect(backends.database_url)
    spans: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("baton_events", lambda *args: spans.put_nowait(args[3]))

    async def read_spans() -> None:
        while True:
            first, _, last = (await spans.get()).partition("-")
            now = time.perf_counter()
            for row in await reader.fetch(
                "SELECT id FROM events WHERE seq BETWEEN $1 AND $2", int(first), int(last)
            ):
                stored_at.setdefault(str(row["id"]), now)

    async def stream() -> None:
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(base_url=api_url, timeout=timeout) as client,
            client.stream("GET", "/events/stream", params={"name": "bench.latency"}) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    streamed_at.setdefault(orjson.loads(line[5:])["id"], time.perf_counter())
                elif line.startswith(": connected"):
                    connected.set()

    connected = asyncio.Event()
    tasks = [asyncio.create_task(read_spans()), asyncio.create_task(stream())]
    connection = await Connection.open(backends.broker_url, name="bench-latency")
    try:
        await asyncio.wait_for(connected.wait(), 10)
        channel = await connection.channel(confirms=True)
        total = int(rate * seconds)
        started = time.perf_counter()
        confirms: list[asyncio.Future[None]] = []
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event_id, body = event_body("bench.latency", i)
            sent[event_id] = time.perf_counter()
            props = Properties(content_type="application/json", message_id=event_id, delivery_mode=PERSISTENT)
            confirm = channel.publish("baton.events", "bench.latency", body, props, mandatory=True)
            assert confirm is not None
            confirms.append(confirm)
        await asyncio.gather(*confirms)
        deadline = time.perf_counter() + 30
        while (len(stored_at) < total or len(streamed_at) < total) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await connection.close()
        await listener.close()
        await reader.close()
    to_store = [stored_at[i] - t for i, t in sent.items() if i in stored_at]
    to_stream = [streamed_at[i] - t for i, t in sent.items() if i in streamed_at]
    return to_store, to_stream


def describe_ms(name: str, seconds: list[float], expected: int) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name}: p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms "
        f"({len(ms)} of {expected} seen)"
    )


async def burst_rss(api_url: str, server: Any, n: int) -> None:
    before = server.rss_mb()
    body = orjson.dumps(
        [
            {
                "event": "bench.burst",
                "resource": {"baton.resource.id": f"b.{i}"},
                "payload": EVENT_BODY_PAYLOAD,
            }
            for i in range(100)
        ]
    )
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        queue = list(range(n // 100))

        async def post() -> None:
            while queue:
                queue.pop()
                response = await client.post(
                    "/events", content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == 202, response.text

        await asyncio.gather(*(post() for _ in range(8)))
    print(
        f"API process RSS: {before:.1f} MB before a burst of {n} events over HTTP, "
        f"{server.rss_mb():.1f} MB after"
    )
    await asyncio.sleep(12)  # the server looks at its RSS every 10 s and trims the heap
    print(f"  {server.rss_mb():.1f} MB at idle after it")


async def main(backends: Any, logs: str, events: int) -> None:
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if True:
        with server_process(
            backends,
            Path(logs),
            "api",
            "tracker",
            "scheduler",
            BATON_LOG_LEVEL="WARNING",
            BATON_AUTH_REQUIRED="false",
        ) as api:
            ceiling = await consume_ceiling(backends.broker_url, events)
            print(
                "raw consume-and-ack ceiling (baton._amqp, quorum queue, prefetch 2000): "
                f"{ceiling:.0f} msgs/s"
            )
            rate, cpu = await amqp_throughput(backends, Path(logs), events)
            print(f"events/s stored over AMQP: {rate:.0f} ({100 * rate / ceiling:.0f}% of the ceiling)")
            print(f"  {cpu} (the events service process)")
            with server_process(backends, Path(logs), "events", BATON_LOG_LEVEL="INFO") as events_service:
                conn = await asyncpg.connect(backends.database_url)
                try:
                    accepted, stored = await http_throughput(api.api_url, conn, min(events, 20_000))
                finally:
                    await conn.close()
                print(
                    "events/s over HTTP (batches of 100, 8 in flight): "
                    f"accepted {accepted:.0f}, stored {stored:.0f}"
                )
                to_store, to_stream = await latency(backends, api.api_url, 1000, 10)
                print(describe_ms("published -> stored at 1,000 events/s", to_store, 10_000))
                print(describe_ms("published -> on a live stream at 1,000 events/s", to_stream, 10_000))
                await burst_rss(api.api_url, api, 100_000)
                del events_service
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    with (
        test_backends() as backends,
        tempfile.TemporaryDirectory() as logs,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        runner.run(main(backends, logs, args.events))
