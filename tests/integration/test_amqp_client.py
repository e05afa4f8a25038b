"""`baton._amqp` against the real RabbitMQ: confirms, returns, consumers, acks, RPC over direct
reply-to, closing, and a `Link` that comes back after the broker cuts it.

Each test declares its own queues (exclusive: they go with the connection) in the run's vhost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from baton._amqp import (
    PERSISTENT,
    AmqpError,
    Channel,
    ChannelClosed,
    Connection,
    ConnectionClosed,
    Delivery,
    Link,
    Properties,
    Returned,
    WriteBufferFull,
)

from ..support.backends import Backends
from ..support.proxy import TcpProxy
from ..support.waiting import eventually

WAIT = 10.0  # the deadline for anything the broker should do at once
REPLY_TO = "amq.rabbitmq.reply-to"


def _name(what: str) -> str:
    return f"baton-amqp-test-{what}-{uuid.uuid4().hex[:10]}"


async def _queue(channel: Channel) -> str:
    name, _, _ = await channel.declare_queue(_name("q"), exclusive=True)
    return name


async def _next(deliveries: asyncio.Queue[Delivery]) -> Delivery:
    return await asyncio.wait_for(deliveries.get(), WAIT)


async def _outcome(future: asyncio.Future[None] | None) -> BaseException | None:
    assert future is not None, "a channel in confirm mode returns a future for each publish"
    try:
        await asyncio.wait_for(future, WAIT)
    except AmqpError as exc:
        return exc
    return None


@pytest.fixture
async def connection(backends: Backends) -> AsyncIterator[Connection]:
    opened = await Connection.open(backends.broker_url, name=_name("connection"))
    try:
        yield opened
    finally:
        await opened.close()


# --- publish, confirm, consume ---------------------------------------------------------------


async def test_published_messages_are_confirmed_and_consumed_intact(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    big = os.urandom(1_000_000)  # ~8 body frames at the broker's frame_max
    assert len(big) > 4 * connection.frame_max
    sent = [
        (
            b'{"hello": "world"}',
            Properties(
                content_type="application/json",
                content_encoding="utf-8",
                headers={"x-run": "r-1", "attempt": 2, "big": 2**40, "ok": True, "nested": {"l": [1, "a"]}},
                delivery_mode=PERSISTENT,
                priority=3,
                correlation_id="corr-1",
                reply_to="somewhere",
                expiration="600000",
                message_id="m-1",
                timestamp=datetime(2024, 5, 17, 12, 0, 1, tzinfo=UTC),
                type="greeting",
                user_id="guest",  # RabbitMQ checks it is the connection's user
                app_id="baton-tests",
            ),
        ),
        (big, Properties(message_id="m-big", headers={"size": len(big)})),
        (b"", Properties(message_id="m-empty")),
        (bytes([0xCE]) * 10, Properties()),  # frame-end octets in the body
    ]
    futures = [channel.publish("", queue, body, properties, mandatory=True) for body, properties in sent]
    assert [await _outcome(future) for future in futures] == [None] * len(sent)
    _, ready, _ = await channel.declare_queue(queue, passive=True)
    assert ready == len(sent)

    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    tag = await channel.consume(queue, deliveries.put_nowait)
    for body, properties in sent:
        delivery = await _next(deliveries)
        assert delivery.body == body
        assert delivery.properties == properties
        assert (delivery.consumer_tag, delivery.exchange, delivery.routing_key) == (tag, "", queue)
        assert not delivery.redelivered
        delivery.ack()
    assert deliveries.empty()
    assert (await channel.declare_queue(queue, passive=True))[1:] == (0, 1)


async def test_a_channel_without_confirms_publishes_without_a_future(connection: Connection) -> None:
    channel = await connection.channel()
    queue = await _queue(channel)
    assert channel.publish("", queue, b"fire and forget", Properties()) is None
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait, no_ack=True)
    assert (await _next(deliveries)).body == b"fire and forget"


# --- mandatory returns -----------------------------------------------------------------------


async def test_a_mandatory_publish_no_queue_takes_fails_with_returned(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    nowhere = _name("nowhere")
    error = await _outcome(channel.publish("", nowhere, b"lost", Properties(), mandatory=True))
    assert isinstance(error, Returned)
    assert (error.code, error.text, error.exchange, error.routing_key) == (312, "NO_ROUTE", "", nowhere)
    assert channel.is_open  # a return is no channel error


async def test_mandatory_publishes_in_flight_together_each_get_their_own_outcome(
    connection: Connection,
) -> None:
    channel = await connection.channel(confirms=True)
    first, second = await _queue(channel), await _queue(channel)
    nowhere, elsewhere = _name("nowhere"), _name("elsewhere")
    keys = [first, nowhere, first, second, nowhere, elsewhere, nowhere, second, first, elsewhere]
    plan = [(keys[i % len(keys)] if i % 7 else keys[(i * 3) % len(keys)], i) for i in range(120)]
    futures = [
        channel.publish(
            "",
            key,
            f"message {i}".encode(),
            # half of them without a message id: the return is matched on the rest
            Properties(message_id=f"m-{i}" if i % 2 else None, headers={"i": i}),
            mandatory=True,
        )
        for key, i in plan
    ]
    outcomes = await asyncio.gather(*map(_outcome, futures))

    for (key, i), outcome in zip(plan, outcomes, strict=True):
        if key in (first, second):
            assert outcome is None, f"message {i} to {key}"
        else:
            assert isinstance(outcome, Returned), f"message {i} to {key}: {outcome!r}"
            assert (outcome.code, outcome.routing_key) == (312, key)

    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    for queue in (first, second):
        await channel.consume(queue, deliveries.put_nowait, no_ack=True)
    routed = {i for key, i in plan if key in (first, second)}
    received = {}
    for _ in routed:
        delivery = await _next(deliveries)
        received[delivery.headers["i"]] = delivery.routing_key
    assert received == {i: key for key, i in plan if key in (first, second)}


async def test_a_return_goes_to_its_own_publish_when_a_routed_one_shares_its_routing_key(
    connection: Connection,
) -> None:
    """The same exchange, routing key and (no) message id, routed and then not: the queue is
    deleted between the publishes, all in flight at once. The routed ones can be confirmed after
    the others are returned."""
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    routed = [channel.publish("", queue, b"routed", Properties(), mandatory=True) for _ in range(20)]
    deleting = asyncio.create_task(channel.delete_queue(queue))
    await asyncio.sleep(0)  # the delete is written after the first publishes, before the others
    returned = [channel.publish("", queue, b"returned", Properties(), mandatory=True) for _ in range(20)]
    await asyncio.wait_for(deleting, WAIT)

    assert [await _outcome(future) for future in routed] == [None] * len(routed)
    for future in returned:
        error = await _outcome(future)
        assert isinstance(error, Returned) and error.routing_key == queue, error


async def test_a_non_mandatory_publish_no_queue_takes_is_confirmed(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    assert await _outcome(channel.publish("", _name("nowhere"), b"dropped", Properties())) is None
    assert channel.is_open


# --- topology --------------------------------------------------------------------------------


async def test_exchanges_are_declared_and_queues_bound_with_arguments(connection: Connection) -> None:
    """A headers exchange routes on the binding's arguments, and what it does not route goes to
    its alternate exchange (an exchange argument)."""
    channel = await connection.channel(confirms=True)
    headers, fanout = _name("headers"), _name("fanout")
    arguments = {"alternate-exchange": fanout}
    await channel.declare_exchange(headers, "headers", arguments=arguments)
    try:
        await channel.declare_exchange(fanout, "fanout", auto_delete=True)
        await channel.declare_exchange(headers, "headers", arguments=arguments)  # the same again
        await channel.check_exchange(headers)
        matched, unmatched = await _queue(channel), await _queue(channel)
        match = {"x-match": "all", "kind": "run", "n": 7}
        await channel.bind_queue(matched, headers, arguments=match)
        await channel.bind_queue(unmatched, fanout)

        deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        for queue in (matched, unmatched):
            await channel.consume(queue, deliveries.put_nowait, no_ack=True)

        async def where(found: dict[str, Any]) -> str:
            assert await _outcome(channel.publish(headers, "", b"x", Properties(headers=found))) is None
            return (await _next(deliveries)).consumer_tag

        to_matched = await where({"kind": "run", "n": 7})
        to_unmatched = await where({"kind": "run", "n": 8})
        assert to_matched != to_unmatched
        assert await where({"kind": "run", "n": 7, "extra": True}) == to_matched
        await channel.unbind_queue(matched, headers, arguments=match)
        assert await where({"kind": "run", "n": 7}) == to_unmatched
        assert deliveries.empty()
    finally:
        await channel.delete_exchange(headers)


async def test_an_exchange_bound_to_another_receives_what_it_routes(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    source, destination = _name("source"), _name("destination")
    await channel.declare_exchange(source, "topic", auto_delete=True)
    await channel.declare_exchange(destination, "direct", auto_delete=True)
    await channel.bind_exchange(destination, source, "runs.*")
    queue = await _queue(channel)
    await channel.bind_queue(queue, destination, "runs.started")
    assert (
        await _outcome(channel.publish(source, "runs.started", b"via two", Properties(), mandatory=True))
        is None
    )
    error = await _outcome(channel.publish(source, "flows.started", b"nowhere", Properties(), mandatory=True))
    assert isinstance(error, Returned)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait, no_ack=True)
    assert (await _next(deliveries)).body == b"via two"
    await channel.delete_exchange(source)
    with pytest.raises(ChannelClosed) as raised:
        await channel.check_exchange(source)
    assert raised.value.code == 404


async def test_an_exchange_declared_differently_closes_the_channel_with_406(connection: Connection) -> None:
    channel = await connection.channel()
    name = _name("exchange")
    await channel.declare_exchange(name, "direct", auto_delete=True)
    with pytest.raises(ChannelClosed) as raised:
        await channel.declare_exchange(name, "fanout", auto_delete=True)
    assert raised.value.code == 406 and "PRECONDITION_FAILED" in raised.value.text
    again = await connection.channel()
    await again.declare_exchange(name, "direct", auto_delete=True)  # the one that exists
    assert await again.delete_queue(await _queue(again)) == 0


# --- channel errors --------------------------------------------------------------------------


async def test_publishing_to_a_missing_exchange_closes_the_channel_not_the_connection(
    connection: Connection,
) -> None:
    channel = await connection.channel(confirms=True)
    error = await _outcome(channel.publish(_name("no-exchange"), "key", b"x", Properties()))
    assert isinstance(error, ChannelClosed) and error.code == 404, error
    assert "NOT_FOUND" in error.text
    assert not channel.is_open
    with pytest.raises(ChannelClosed) as raised:
        channel.publish("", "key", b"x", Properties())
    assert raised.value.code == 404
    with pytest.raises(ChannelClosed):
        await channel.declare_queue(_name("q"))

    assert not connection.closed.done()
    again = await connection.channel(confirms=True)
    assert channel.number not in connection.channels  # the closed one is forgotten, its number free
    assert again.is_open and connection.channels[again.number] is again
    queue = await _queue(again)
    assert await _outcome(again.publish("", queue, b"still here", Properties())) is None


async def test_a_channel_the_client_closes_refuses_further_work(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    await channel.close()
    assert not channel.is_open
    with pytest.raises(ChannelClosed) as raised:
        channel.publish("", "key", b"x", Properties())
    assert raised.value.code == 200
    await channel.close()  # twice is fine
    assert not connection.closed.done()


# --- consumers -------------------------------------------------------------------------------


async def test_deleting_a_consumed_queue_cancels_the_consumer(connection: Connection) -> None:
    channel = await connection.channel()
    queue = await _queue(channel)
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    tag = await channel.consume(queue, lambda _: None, on_cancel=cancelled.put_nowait)
    assert channel.has_consumer(tag)

    other = await connection.channel()
    await other.delete_queue(queue)

    assert await asyncio.wait_for(cancelled.get(), WAIT) == tag
    assert not channel.has_consumer(tag)
    assert channel.is_open  # the consumer is gone, the channel is not
    await _queue(channel)
    assert cancelled.empty()


async def test_a_consumer_the_client_cancels_hears_no_cancel(connection: Connection) -> None:
    channel = await connection.channel()
    queue = await _queue(channel)
    cancelled: list[str] = []
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    tag = await channel.consume(queue, deliveries.put_nowait, on_cancel=cancelled.append)
    await channel.cancel(tag)
    assert not channel.has_consumer(tag)

    publisher = await connection.channel(confirms=True)
    assert await _outcome(publisher.publish("", queue, b"for nobody", Properties())) is None
    assert (await channel.declare_queue(queue, passive=True))[1:] == (1, 0)
    assert deliveries.empty() and cancelled == []


async def test_a_nack_with_requeue_redelivers_and_one_without_drops(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait)

    await _outcome(channel.publish("", queue, b"again", Properties(message_id="again")))
    first = await _next(deliveries)
    assert (first.body, first.redelivered) == (b"again", False)
    first.nack(requeue=True)
    second = await _next(deliveries)
    assert (second.body, second.message_id, second.redelivered) == (b"again", "again", True)
    assert second.delivery_tag != first.delivery_tag

    second.nack(requeue=False)
    # were it requeued, it would come back before a message published after it
    await _outcome(channel.publish("", queue, b"marker", Properties()))
    marker = await _next(deliveries)
    assert (marker.body, marker.redelivered) == (b"marker", False)
    marker.ack()
    assert (await channel.declare_queue(queue, passive=True))[1] == 0
    assert deliveries.empty()


async def test_a_get_takes_one_message_at_a_time_and_none_from_an_empty_queue(connection: Connection) -> None:
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    assert await channel.get(queue) is None
    headers = {"x-baton-test": "yes"}
    await _outcome(channel.publish("", queue, b"first", Properties(message_id="1", headers=headers)))
    await _outcome(channel.publish("", queue, b"x" * 300_000, Properties(message_id="2")))  # several frames

    first = await channel.get(queue)
    assert first is not None
    assert (first.body, first.message_id, first.headers, first.routing_key) == (b"first", "1", headers, queue)
    second = await channel.get(queue)
    assert second is not None and (second.body, second.message_id) == (b"x" * 300_000, "2")
    assert await channel.get(queue) is None
    first.nack(requeue=True)  # given back: the next get has it again
    again = await channel.get(queue)
    assert again is not None and (again.message_id, again.redelivered) == ("1", True)
    again.ack()
    second.ack()
    assert (await channel.declare_queue(queue, passive=True))[1] == 0


async def test_a_get_from_a_missing_queue_closes_the_channel_with_404(connection: Connection) -> None:
    channel = await connection.channel()
    with pytest.raises(ChannelClosed) as closed:
        await channel.get(_name("missing"))
    assert closed.value.code == 404
    assert not channel.is_open and not connection.closed.done()


async def test_prefetch_limits_the_unacked_deliveries(connection: Connection) -> None:
    publisher = await connection.channel(confirms=True)
    queue = await _queue(publisher)
    for i in range(5):
        await _outcome(publisher.publish("", queue, str(i).encode(), Properties()))

    channel = await connection.channel(prefetch=2)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait)
    held = [await _next(deliveries), await _next(deliveries)]
    # the broker holds the other three back; anything it had sent would arrive before this reply
    assert (await channel.declare_queue(queue, passive=True))[1:] == (3, 1)
    assert deliveries.empty()

    held[0].ack()
    held.append(await _next(deliveries))
    assert (await channel.declare_queue(queue, passive=True))[1] == 2
    assert deliveries.empty()

    for delivery in held[1:]:
        delivery.ack()
    held += [await _next(deliveries), await _next(deliveries)]
    assert [delivery.body for delivery in held] == [b"0", b"1", b"2", b"3", b"4"]
    held[3].ack()
    held[4].ack()
    assert (await channel.declare_queue(queue, passive=True))[1] == 0


async def test_an_rpc_over_direct_reply_to(connection: Connection, backends: Backends) -> None:
    server = await Connection.open(backends.broker_url, name=_name("rpc-server"))
    try:
        serving = await server.channel()
        requests, _, _ = await serving.declare_queue(_name("requests"), auto_delete=True)

        def answer(request: Delivery) -> None:
            assert request.reply_to is not None and request.reply_to.startswith(f"{REPLY_TO}.")
            reply = Properties(correlation_id=request.correlation_id, headers={"served": True})
            serving.publish("", request.reply_to, b"re: " + request.body, reply)
            request.ack()

        await serving.consume(requests, answer)

        client = await connection.channel(confirms=True)
        replies: asyncio.Queue[Delivery] = asyncio.Queue()
        await client.consume(REPLY_TO, replies.put_nowait, no_ack=True)
        asked = [
            client.publish(
                "",
                requests,
                f"question {i}".encode(),
                Properties(reply_to=REPLY_TO, correlation_id=f"c-{i}"),
                mandatory=True,
            )
            for i in range(3)
        ]
        assert [await _outcome(future) for future in asked] == [None] * 3
        answers = {}
        for _ in asked:
            reply = await _next(replies)
            assert reply.headers == {"served": True}
            answers[reply.correlation_id] = reply.body
        assert answers == {f"c-{i}": f"re: question {i}".encode() for i in range(3)}
    finally:
        await server.close()


# --- closing ---------------------------------------------------------------------------------


async def test_a_closed_connection_resolves_closed_and_refuses_work(backends: Backends) -> None:
    connection = await Connection.open(backends.broker_url, name=_name("closing"))
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    cancelled: list[str] = []
    tag = await channel.consume(queue, lambda _: None, on_cancel=cancelled.append)

    await connection.close()

    reason = await asyncio.wait_for(asyncio.shield(connection.closed), WAIT)
    assert isinstance(reason, ConnectionClosed)
    assert not channel.is_open and not channel.has_consumer(tag)
    assert cancelled == [tag]  # its consumers hear they are gone
    with pytest.raises(ConnectionClosed):
        channel.publish("", queue, b"too late", Properties())
    with pytest.raises(ConnectionClosed):
        await connection.channel()
    await connection.close()  # twice is fine


async def test_aborting_fails_the_confirms_and_calls_in_flight(backends: Backends) -> None:
    connection = await Connection.open(backends.broker_url, name=_name("aborting"))
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    futures = [channel.publish("", queue, b"x" * 1000, Properties()) for _ in range(50)]
    declaring = asyncio.create_task(channel.declare_queue(_name("q"), exclusive=True))
    await asyncio.sleep(0)  # the declare is written and awaits its reply

    connection.abort()

    outcomes = await asyncio.gather(*map(_outcome, futures))
    assert all(isinstance(outcome, ConnectionClosed) for outcome in outcomes), outcomes
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(declaring, WAIT)
    assert isinstance(connection.closed.result(), ConnectionClosed)
    with pytest.raises(ConnectionClosed):
        channel.publish("", queue, b"x", Properties())


# --- a silent peer and a socket that takes no more (through a proxy that stops forwarding) ------


def _broker(backends: Backends) -> tuple[str, int]:
    parts = urlsplit(backends.broker_url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def _query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


async def test_a_broker_that_goes_silent_is_dropped_after_two_missed_heartbeats(backends: Backends) -> None:
    async with TcpProxy(*_broker(backends)) as proxy:
        url = _query(proxy.url(backends.broker_url), "heartbeat=1")
        connection = await Connection.open(url, name=_name("silent"))
        assert connection.heartbeat == 1
        channel = await connection.channel(confirms=True)
        queue = await _queue(channel)
        assert await _outcome(channel.publish("", queue, b"before", Properties())) is None

        proxy.freeze()  # the sockets stay open; nothing gets through
        pending = channel.publish("", queue, b"into the void", Properties())

        reason = await asyncio.wait_for(asyncio.shield(connection.closed), 10 * WAIT)
        assert isinstance(reason, ConnectionClosed) and "no heartbeat" in str(reason), reason
        assert isinstance(await _outcome(pending), ConnectionClosed)
        assert not channel.is_open


async def test_a_socket_that_takes_no_more_holds_publishers_back(backends: Backends) -> None:
    async with TcpProxy(*_broker(backends)) as proxy:
        url = _query(proxy.url(backends.broker_url), "heartbeat=0")
        connection = await Connection.open(url, name=_name("backpressure"), max_buffer=32 << 20)
        try:
            channel = await connection.channel(confirms=True)
            queue = await _queue(channel)
            proxy.freeze()
            body = os.urandom(256 << 10)
            confirms: list[asyncio.Future[None] | None] = []
            while not connection.paused:  # the kernel's buffers fill first, then the transport's
                assert len(confirms) < 1000, "the socket never stopped taking writes"
                confirms.append(channel.publish("", queue, body, Properties()))
                await asyncio.sleep(0)  # a turn: the batch is written to the socket
            assert "socket's buffer is full" in connection.holding_back()
            waiting = asyncio.create_task(channel.writable())
            await asyncio.sleep(0)
            assert not waiting.done()
            with pytest.raises(WriteBufferFull):
                for _ in range(200):  # publishing on without waiting hits the bound
                    confirms.append(channel.publish("", queue, body, Properties()))
            buffered = connection.buffered
            assert buffered <= connection.max_buffer + len(body) + 1024

            proxy.thaw()
            await asyncio.wait_for(waiting, 3 * WAIT)
            assert not connection.paused
            assert [await _outcome(confirm) for confirm in confirms] == [None] * len(confirms)
            assert (await channel.declare_queue(queue, passive=True))[1] == len(confirms)
        finally:
            proxy.thaw()
            await connection.close()


def _with_credentials(url: str, user: str, password: str, vhost: str | None = None) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else f"{parts.hostname}"
    path = parts.path if vhost is None else f"/{vhost}"
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", path, parts.query, ""))


async def test_wrong_credentials_fail_to_open_and_do_not_hang(backends: Backends) -> None:
    url = _with_credentials(backends.broker_url, "nobody", "wrong")
    with pytest.raises(ConnectionClosed) as raised:
        await asyncio.wait_for(Connection.open(url, name=_name("nobody"), timeout=WAIT), 2 * WAIT)
    # the broker's refusal is reported (authentication_failure_close), not waited out
    assert "403" in str(raised.value) and "ACCESS_REFUSED" in str(raised.value), raised.value


async def test_a_missing_vhost_fails_to_open(backends: Backends) -> None:
    url = _with_credentials(backends.broker_url, "guest", "guest", vhost=_name("no-vhost"))
    with pytest.raises(AmqpError) as raised:
        await asyncio.wait_for(Connection.open(url, name=_name("no-vhost"), timeout=WAIT), 2 * WAIT)
    assert "530" in str(raised.value), raised.value


# --- Link ------------------------------------------------------------------------------------


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _connection_pids(name: str) -> list[str]:
    listing = await asyncio.to_thread(
        _rabbitmqctl, "list_connections", "pid", "client_properties", "--no-table-headers"
    )
    return [line.split("\t", 1)[0] for line in listing.splitlines() if f'"{name}"' in line]


async def _round_trip(connection: Connection) -> bytes:
    channel = await connection.channel(confirms=True)
    queue = await _queue(channel)
    assert await _outcome(channel.publish("", queue, b"round trip", Properties(), mandatory=True)) is None
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait, no_ack=True)
    body = (await _next(deliveries)).body
    await channel.close()
    return body


async def test_a_link_reconnects_after_the_broker_closes_its_connection(backends: Backends) -> None:
    if backends.rabbitmqctl is None:
        pytest.fail("this test cuts a connection with rabbitmqctl: it needs the machine's RabbitMQ")
    name = _name("link")
    link = Link(backends.broker_url, name=name, max_backoff=0.5)
    reconnected: asyncio.Queue[Connection] = asyncio.Queue()

    async def reopen(connection: Connection) -> None:
        await connection.channel()  # what a user does here: open its channels again
        reconnected.put_nowait(connection)

    async def fail(connection: Connection) -> None:
        raise RuntimeError("a user's reconnect callback fails")

    link.on_reconnect(fail)  # first: it stops neither the callbacks after it nor the next reconnect
    link.on_reconnect(reopen)
    await link.connect()
    try:
        assert link.up.is_set()
        first = link.connection
        assert await _round_trip(first) == b"round trip"
        [pid] = await eventually(lambda: _connection_pids(name), what="the link's connection")

        for cut in range(2):  # and again: the new connection is watched too
            await asyncio.to_thread(_rabbitmqctl, "close_connection", pid, f"tests: cut the link ({cut})")

            reason = await asyncio.wait_for(asyncio.shield(first.closed), WAIT)
            assert isinstance(reason, ConnectionClosed) and "320" in str(reason), reason
            second = await asyncio.wait_for(reconnected.get(), 3 * WAIT)
            assert link.up.is_set()
            assert link.connection is second and second is not first
            assert await _round_trip(link.connection) == b"round trip"
            [new_pid] = await eventually(lambda: _connection_pids(name), what="the new connection")
            assert new_pid != pid
            first, pid = second, new_pid
        assert reconnected.empty()
    finally:
        await link.close()
    assert not link.up.is_set()
    with pytest.raises(ConnectionClosed):
        _ = link.connection
    assert first.closed.done()


async def test_a_link_whose_reconnect_fails_unexpectedly_keeps_watching(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the reconnect does not retry (not a broker or socket error: a bug, say) does not
    end the link's watcher: it logs it and reconnects all the same."""

    real_open = Connection.open
    failures = 0

    async def open_failing_once(url: str, **kwargs: Any) -> Connection:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise RuntimeError("an error the reconnect does not expect")
        return await real_open(url, **kwargs)

    link = Link(backends.broker_url, name=_name("link-bug"), max_backoff=0.2)
    reconnected: asyncio.Queue[Connection] = asyncio.Queue()

    async def reopen(connection: Connection) -> None:
        reconnected.put_nowait(connection)

    link.on_reconnect(reopen)
    await link.connect()
    try:
        first = link.connection
        monkeypatch.setattr(Connection, "open", open_failing_once)
        first.abort("tests: the socket broke")
        second = await asyncio.wait_for(reconnected.get(), WAIT)
        assert failures == 1 and second is not first and link.up.is_set()
        assert await _round_trip(link.connection) == b"round trip"
    finally:
        await link.close()
