"""What the AMQP stack alone costs on this machine: the ceiling under Baton's tracker figures.

An echo server (aio-pika on uvloop, as `baton server start` runs) answers RPCs over direct
reply-to with no database, no validation and no state-change publish; the client is aio-pika as
the SDK uses it (confirmed, mandatory requests). It prints the round trip (p50, p99), echoes per
second with 64 in flight, confirmed publishes per second from one process, and CPU per echo.
A tracker transition does all of this and more, so it cannot beat these figures here.

Usage: .venv/bin/python bench/amqp_ceiling.py
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import aio_pika
from _cpu import CpuMeter
from _harness import describe, test_backends

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
BODY = b'{"schema_version":1,"kind":"propose_state","state":{"type":"RUNNING"}}' * 4


async def echo_server(url: str, queue_name: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=64)
    replies = await connection.channel(publisher_confirms=False)
    queue = await channel.declare_queue(queue_name, auto_delete=True)

    async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await replies.default_exchange.publish(
            aio_pika.Message(message.body, correlation_id=message.correlation_id),
            routing_key=message.reply_to or "",
            mandatory=False,
        )
        await message.ack()

    await queue.consume(answer)
    print("ready", flush=True)
    await stop.wait()
    await connection.close()


class EchoClient:
    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue_name: str) -> None:
        self._channel = channel
        self._queue_name = queue_name
        self._pending: dict[str, asyncio.Future[bytes]] = {}

    async def start(self) -> None:
        replies = await self._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None:
            future.set_result(message.body)

    async def call(self) -> None:
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        await self._channel.default_exchange.publish(
            aio_pika.Message(BODY, correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO),
            routing_key=self._queue_name,
            mandatory=True,
        )
        await future


@dataclass(frozen=True)
class Ceiling:
    p50_ms: float
    per_second: float


async def measure(
    url: str,
    queue_name: str,
    server_pid: int,
    *,
    serial: int = 2000,
    calls: int = 8000,
    publishes: int = 20000,
) -> Ceiling:
    meter = CpuMeter(server_pid)
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        client = EchoClient(channel, queue_name)
        await client.start()
        for _ in range(200):
            await client.call()  # warm-up
        latencies = []
        for _ in range(serial):
            started = time.perf_counter()
            await client.call()
            latencies.append(time.perf_counter() - started)
        print(describe("echo RPC round trip (AMQP only)", latencies))

        in_flight = 64

        async def worker(count: int) -> None:
            for _ in range(count):
                await client.call()

        before = meter.sample()
        await asyncio.gather(*(worker(calls // in_flight) for _ in range(in_flight)))
        after = meter.sample()
        rate = calls / (after.wall - before.wall)
        print(f"echo RPCs/s, {in_flight} in flight: {rate:.0f}")
        print(f"  {CpuMeter.per_op(before, after, calls)}")
        if not publishes:
            return Ceiling(statistics.median(latencies) * 1000, rate)

        sink = await channel.declare_queue(exclusive=True, arguments={"x-max-length": 1000})
        started = time.perf_counter()
        await asyncio.gather(
            *(
                channel.default_exchange.publish(aio_pika.Message(BODY), routing_key=sink.name)
                for _ in range(publishes)
            )
        )
        print(f"confirmed publishes/s, one process: {publishes / (time.perf_counter() - started):.0f}")
        return Ceiling(statistics.median(latencies) * 1000, rate)
    finally:
        await connection.close()


@contextlib.contextmanager
def echo_server_process(url: str) -> Iterator[tuple[str, int]]:
    """The echo server in its own process: (its queue, its pid)."""
    queue_name = f"bench-echo-{uuid.uuid4().hex[:8]}"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, queue_name], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield queue_name, server.pid
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    with test_backends() as backends, echo_server_process(backends.broker_url) as (queue_name, pid):
        asyncio.run(measure(backends.broker_url, queue_name, pid))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        import uvloop

        uvloop.run(echo_server(sys.argv[2], sys.argv[3]))
    else:
        main()
