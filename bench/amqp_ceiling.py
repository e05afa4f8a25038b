"""What the AMQP stack alone costs on this machine: the ceiling under Baton's tracker figures.

An echo server (on uvloop, as `baton server start` runs) answers RPCs over direct reply-to with
no database, no validation and no state-change publish; the client sends confirmed, mandatory
requests as the SDK does. Both ends run on Baton's own client (`baton._amqp`, what the
tracker, the outbox and the SDK use), then on aio-pika (what they used before), then on aiormq
directly (aio-pika's protocol layer without its object model: the cheapest well-kept client).
It prints the round trip (p50, p99), echoes per second with 64 in
flight, confirmed publishes per second from one process, and CPU per echo. A tracker
transition does all of this and more, so it cannot beat these figures here.

Usage: .venv/bin/python bench/amqp_ceiling.py [baton._amqp] [aio-pika] [aiormq]
"""

from __future__ import annotations

import abc
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
from typing import Any

import aio_pika
import aiormq
import aiormq.abc
from _cpu import CpuMeter
from _harness import describe, test_backends
from pamqp import commands as spec

from baton._amqp import PERSISTENT, Channel, Connection, Delivery, Properties
from baton._event_loop import loop_factory

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
BODY = b'{"schema_version":1,"kind":"propose_state","state":{"type":"RUNNING"}}' * 4


async def lean_echo_server(url: str, queue_name: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = await Connection.open(url, name="bench-echo")
    channel = await connection.channel(prefetch=64)
    await channel.declare_queue(queue_name, auto_delete=True)

    def answer(message: Delivery) -> None:
        reply = Properties(correlation_id=message.correlation_id)
        channel.publish("", message.reply_to or "", message.body, reply)
        message.ack()

    await channel.consume(queue_name, answer)
    print("ready", flush=True)
    await stop.wait()
    await connection.close()


class _Calls(abc.ABC):
    """Echo RPCs in flight, answered by correlation id: what each client below shares."""

    def __init__(self, queue_name: str) -> None:
        self._queue_name = queue_name
        self._pending: dict[str, asyncio.Future[bytes]] = {}

    def _answered(self, correlation_id: str | None, body: bytes) -> None:
        future = self._pending.pop(correlation_id or "", None)
        if future is not None:
            future.set_result(body)

    async def call(self) -> None:
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        await self._send(correlation_id)
        await future

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def _send(self, correlation_id: str) -> None:
        """Publish the request (confirmed, mandatory) and wait for its confirm."""


class LeanEchoClient(_Calls):
    def __init__(self, channel: Channel, queue_name: str) -> None:
        super().__init__(queue_name)
        self._channel = channel

    async def start(self) -> None:
        await self._channel.consume(
            DIRECT_REPLY_TO, lambda m: self._answered(m.correlation_id, m.body), no_ack=True
        )

    async def _send(self, correlation_id: str) -> None:
        properties = Properties(correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO)
        confirm = self._channel.publish("", self._queue_name, BODY, properties, mandatory=True)
        assert confirm is not None
        await confirm


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


class EchoClient(_Calls):
    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue_name: str) -> None:
        super().__init__(queue_name)
        self._channel = channel

    async def start(self) -> None:
        replies = await self._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._answered(message.correlation_id, message.body)

    async def _send(self, correlation_id: str) -> None:
        await self._channel.default_exchange.publish(
            aio_pika.Message(BODY, correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO),
            routing_key=self._queue_name,
            mandatory=True,
        )


async def aiormq_echo_server(url: str, queue_name: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = await aiormq.connect(url)
    channel = await connection.channel(publisher_confirms=False)
    await channel.basic_qos(prefetch_count=64)
    await channel.queue_declare(queue_name, auto_delete=True)

    async def answer(message: aiormq.abc.DeliveredMessage) -> None:
        properties = message.header.properties
        await channel.basic_publish(
            message.body,
            routing_key=properties.reply_to or "",
            properties=spec.Basic.Properties(correlation_id=properties.correlation_id),
        )
        await channel.basic_ack(message.delivery_tag or 0)

    await channel.basic_consume(queue_name, answer)
    print("ready", flush=True)
    await stop.wait()
    await connection.close()


class AiormqEchoClient(_Calls):
    def __init__(self, channel: aiormq.abc.AbstractChannel, queue_name: str) -> None:
        super().__init__(queue_name)
        self._channel = channel

    async def start(self) -> None:
        await self._channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True)

    async def _on_reply(self, message: aiormq.abc.DeliveredMessage) -> None:
        self._answered(message.header.properties.correlation_id, message.body)

    async def _send(self, correlation_id: str) -> None:
        await self._channel.basic_publish(
            BODY,
            routing_key=self._queue_name,
            properties=spec.Basic.Properties(correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO),
            mandatory=True,
        )


STACKS = ("baton._amqp", "aio-pika", "aiormq")


@dataclass(frozen=True)
class Ceiling:
    p50_ms: float
    per_second: float


async def measure(
    url: str,
    queue_name: str,
    server_pid: int,
    *,
    stack: str = "baton._amqp",
    serial: int = 2000,
    calls: int = 8000,
    publishes: int = 20000,
) -> Ceiling:
    meter = CpuMeter(server_pid)
    name = stack
    closing: list[Any] = []
    client: _Calls
    if stack == "baton._amqp":
        lean_connection = await Connection.open(url, name="bench-client")
        closing.append(lean_connection)
        lean_channel = await lean_connection.channel(confirms=True)
        client = LeanEchoClient(lean_channel, queue_name)
    elif stack == "aio-pika":
        connection = await aio_pika.connect(url)
        closing.append(connection)
        channel = await connection.channel(publisher_confirms=True)
        client = EchoClient(channel, queue_name)
    else:
        raw = await aiormq.connect(url)
        closing.append(raw)
        raw_channel = await raw.channel(publisher_confirms=True)
        client = AiormqEchoClient(raw_channel, queue_name)
    try:
        await client.start()
        for _ in range(200):
            await client.call()  # warm-up
        latencies = []
        for _ in range(serial):
            started = time.perf_counter()
            await client.call()
            latencies.append(time.perf_counter() - started)
        print(describe(f"echo RPC round trip ({name}, AMQP only)", latencies))

        in_flight = 64

        async def worker(count: int) -> None:
            for _ in range(count):
                await client.call()

        before = meter.sample()
        await asyncio.gather(*(worker(calls // in_flight) for _ in range(in_flight)))
        after = meter.sample()
        rate = calls / (after.wall - before.wall)
        print(f"echo RPCs/s ({name}), {in_flight} in flight: {rate:.0f}")
        print(f"  {CpuMeter.per_op(before, after, calls)}")
        if publishes:
            started = time.perf_counter()
            bounded: dict[str, Any] = {"x-max-length": 1000}
            if stack == "baton._amqp":
                sink, _, _ = await lean_channel.declare_queue("", exclusive=True, arguments=bounded)
                confirms = [
                    lean_channel.publish("", sink, BODY, Properties(delivery_mode=PERSISTENT))
                    for _ in range(publishes)
                ]
                await asyncio.gather(*(c for c in confirms if c is not None))
            elif stack == "aio-pika":
                queue = await channel.declare_queue(exclusive=True, arguments=bounded)
                await asyncio.gather(
                    *(
                        channel.default_exchange.publish(aio_pika.Message(BODY), routing_key=queue.name)
                        for _ in range(publishes)
                    )
                )
            else:
                declared = await raw_channel.queue_declare("", exclusive=True, arguments=bounded)
                persistent = spec.Basic.Properties(delivery_mode=2)
                await asyncio.gather(
                    *(
                        raw_channel.basic_publish(
                            BODY, routing_key=declared.queue or "", properties=persistent
                        )
                        for _ in range(publishes)
                    )
                )
            rate_published = publishes / (time.perf_counter() - started)
            print(f"confirmed publishes/s ({name}), one process: {rate_published:.0f}")
        return Ceiling(statistics.median(latencies) * 1000, rate)
    finally:
        for each in closing:
            await each.close()


@contextlib.contextmanager
def echo_server_process(url: str, *, stack: str = "baton._amqp") -> Iterator[tuple[str, int]]:
    """The echo server in its own process: (its queue, its pid)."""
    queue_name = f"bench-echo-{uuid.uuid4().hex[:8]}"
    server = subprocess.Popen(
        [sys.executable, __file__, f"--serve={stack}", url, queue_name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield queue_name, server.pid
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    with test_backends() as backends:
        stacks = sys.argv[1:] or STACKS
        for stack in stacks:
            with echo_server_process(backends.broker_url, stack=stack) as (queue_name, pid):
                # the client's loop is the one the SDK runs its reporter on
                with asyncio.Runner(loop_factory=loop_factory()) as runner:
                    runner.run(measure(backends.broker_url, queue_name, pid, stack=stack))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1].startswith("--serve="):
        import uvloop

        servers = {"baton._amqp": lean_echo_server, "aio-pika": echo_server, "aiormq": aiormq_echo_server}
        uvloop.run(servers[sys.argv[1].removeprefix("--serve=")](sys.argv[2], sys.argv[3]))
    else:
        main()
