"""A memory alarm on the private RabbitMQ node: the broker blocks publishing connections with
connection.blocked. `baton._amqp` says so (`blocked_reason`, `holding_back()`), holds its
publishers in `writable()` and lets them go on connection.unblocked; nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from baton._amqp import Connection, Delivery, Properties

from ..support.private import PrivateRabbitMQ
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos

WAIT = 30.0


async def test_a_blocked_connection_holds_its_publishers_until_the_alarm_clears(
    private_mq: PrivateRabbitMQ,
) -> None:
    connection = await Connection.open(private_mq.url("baton-chaos"), name="baton-chaos-blocked")
    try:
        channel = await connection.channel(confirms=True)
        queue, _, _ = await channel.declare_queue("", exclusive=True)
        await asyncio.to_thread(private_mq.block_publishers)
        try:
            # RabbitMQ blocks a connection when it publishes during the alarm
            first = channel.publish("", queue, b"during the alarm", Properties())
            await eventually(lambda: _true(connection.blocked), timeout=WAIT, what="connection.blocked")
            assert connection.blocked_reason is not None and "memory" in connection.blocked_reason
            assert "blocked the connection" in connection.holding_back()
            waiting = asyncio.create_task(channel.writable())
            await asyncio.sleep(0)
            assert not waiting.done()
        finally:
            await asyncio.to_thread(private_mq.unblock_publishers)
        await asyncio.wait_for(waiting, WAIT)
        assert not connection.blocked and connection.blocked_reason is None
        second = channel.publish("", queue, b"after the alarm", Properties())
        assert first is not None and second is not None
        await asyncio.wait_for(asyncio.gather(first, second), WAIT)

        deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        await channel.consume(queue, deliveries.put_nowait, no_ack=True)
        bodies = [(await asyncio.wait_for(deliveries.get(), WAIT)).body for _ in range(2)]
        assert bodies == [b"during the alarm", b"after the alarm"]
    finally:
        await connection.close()


async def _true(value: bool) -> bool:
    return value
