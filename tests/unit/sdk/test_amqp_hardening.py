"""`baton._amqp` hardened, without a broker (the broker's frames fed by hand): cancelled and
timed-out calls leave nothing half-registered, blocked connections and a full socket hold
publishers back, a raising callback stops nothing, and the URL's options are read or refused."""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from pamqp import body as pamqp_body
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header

from baton._amqp import codec
from baton._amqp.address import Address, login_user
from baton._amqp.codec import Properties
from baton._amqp.connection import CallTimeout, ChannelClosed, Connection, ConnectionClosed, WriteBufferFull

from .test_amqp_codec import _channel, _turns, _Wire, wired

__all__ = ["wired"]  # the fixture, shared with the codec's tests

Wired = tuple[Connection, _Wire]


def _sent(wire: _Wire) -> list[object]:
    """What the client wrote, as pamqp reads it."""
    data, frames = bytes(wire.written), list[object]()
    while data:
        consumed, _, value = pamqp_frame.unmarshal(data)
        frames.append(value)
        data = data[consumed:]
    return frames


def _from_broker(channel: int, method: object) -> bytes:
    return pamqp_frame.marshal(method, channel)  # type: ignore[arg-type]


# --- cancelled and timed-out calls -----------------------------------------------------------


async def test_a_consume_cancelled_before_its_reply_closes_the_channel(wired: Wired) -> None:
    connection, wire = wired
    channel = await _channel(connection, confirms=False)
    consuming = asyncio.create_task(channel.consume("q", lambda _: None))
    await _turns()
    del wire.written[:]
    consuming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consuming
    await _turns()
    assert [type(frame) for frame in _sent(wire)] == [spec.Channel.Close]
    assert not channel.is_open
    # the late consume-ok registers nothing; the number is free once the broker closed it too
    connection.data_received(_from_broker(1, spec.Basic.ConsumeOk("late")))
    assert not channel.has_consumer("late")
    assert connection.channels.get(1) is channel
    connection.data_received(_from_broker(1, spec.Channel.CloseOk()))
    assert 1 not in connection.channels


async def test_a_consume_cancelled_after_its_reply_cancels_the_consumer(wired: Wired) -> None:
    connection, wire = wired
    channel = await _channel(connection, confirms=False)
    consuming = asyncio.create_task(channel.consume("q", lambda _: None))
    await _turns()
    del wire.written[:]
    connection.data_received(_from_broker(1, spec.Basic.ConsumeOk("ctag")))
    consuming.cancel()  # the reply is read, the caller never hears the tag
    with pytest.raises(asyncio.CancelledError):
        await consuming
    await _turns()
    assert not channel.has_consumer("ctag")
    [cancel] = _sent(wire)
    assert isinstance(cancel, spec.Basic.Cancel) and cancel.consumer_tag == "ctag"
    assert channel.is_open


async def test_a_call_without_a_reply_times_out_and_closes_its_channel(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=False)
    with pytest.raises(CallTimeout, match=r"Queue\.Declare"):
        await channel.declare_queue("q", timeout=0.01)
    assert not channel.is_open
    with pytest.raises(ChannelClosed):
        await channel.declare_queue("q")
    # the reply that comes after all is not taken for another call's
    connection.data_received(_from_broker(1, spec.Queue.DeclareOk("q", 0, 0)))
    assert not connection.closed.done()


async def test_a_channel_cancelled_while_opening_keeps_its_number_until_the_broker_closed_it(
    wired: Wired,
) -> None:
    connection, wire = wired
    opening = asyncio.create_task(connection.channel(confirms=True))
    await _turns()
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert 1 in connection.channels  # the broker may still open it
    other = asyncio.create_task(connection.channel())
    await _turns()
    connection.data_received(_from_broker(2, spec.Channel.OpenOk()))
    assert (await asyncio.wait_for(other, 1)).number == 2
    connection.data_received(_from_broker(1, spec.Channel.OpenOk()) + _from_broker(1, spec.Channel.CloseOk()))
    assert 1 not in connection.channels
    assert any(isinstance(frame, spec.Channel.Close) for frame in _sent(wire))


async def test_a_get_cancelled_before_its_message_is_whole_closes_the_channel(wired: Wired) -> None:
    connection, wire = wired
    channel = await _channel(connection, confirms=False)
    getting = asyncio.create_task(channel.get("q"))
    await _turns()
    del wire.written[:]
    # get-ok and the header came; the body has not
    header = spec.Basic.GetOk(delivery_tag=7, exchange="", routing_key="q", message_count=0)
    connection.data_received(_from_broker(1, header))
    connection.data_received(
        pamqp_frame.marshal(pamqp_header.ContentHeader(0, 5, spec.Basic.Properties()), 1)
    )
    await _turns()
    assert not getting.done()
    getting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getting
    await _turns()
    # closing the channel gives the message back to the broker; the late body is dropped
    assert [type(frame) for frame in _sent(wire)] == [spec.Channel.Close]
    connection.data_received(pamqp_frame.marshal(pamqp_body.ContentBody(b"hello"), 1))
    assert not channel.is_open and not connection.closed.done()


async def test_a_get_answered_empty_returns_none_and_leaves_the_channel_open(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=False)
    getting = asyncio.create_task(channel.get("q"))
    await _turns()
    connection.data_received(_from_broker(1, spec.Basic.GetEmpty()))
    assert await asyncio.wait_for(getting, 1) is None
    assert channel.is_open


# --- blocked connections and a full socket ---------------------------------------------------


async def test_a_blocked_connection_holds_publishers_until_unblocked(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    connection.data_received(_from_broker(0, spec.Connection.Blocked("low on memory")))
    assert connection.blocked and connection.blocked_reason == "low on memory"
    assert "low on memory" in connection.holding_back()
    waiting = asyncio.create_task(channel.writable())
    await _turns()
    assert not waiting.done()
    connection.data_received(_from_broker(0, spec.Connection.Unblocked()))
    await asyncio.wait_for(waiting, 1)
    assert not connection.blocked
    assert connection.holding_back() == ""
    assert connection.blocked_reason is None


async def test_a_full_socket_holds_publishers_and_the_buffer_is_bounded(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    connection.max_buffer = 10_000
    connection.pause_writing()
    waiting = asyncio.create_task(channel.writable())
    await _turns()
    assert not waiting.done() and connection.holding_back() == "the socket's buffer is full"
    channel.publish("", "q", b"x" * 20_000, Properties())  # one past the bound is written...
    with pytest.raises(WriteBufferFull, match="socket's buffer is full"):
        channel.publish("", "q", b"y", Properties())  # ...the next is refused, not buffered
    connection.resume_writing()
    await asyncio.wait_for(waiting, 1)
    await _turns()  # flushed
    assert channel.publish("", "q", b"y", Properties()) is not None


async def test_a_publisher_waiting_on_a_lost_connection_hears_it(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    connection.data_received(_from_broker(0, spec.Connection.Blocked("disk")))
    waiting = asyncio.create_task(channel.writable())
    await _turns()
    connection.abort()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(waiting, 1)


# --- callbacks ---------------------------------------------------------------------------------


async def test_a_raising_callback_does_not_stop_the_connection_closing(wired: Wired) -> None:
    connection, _ = wired
    first = await _channel(connection, confirms=False)
    consuming = asyncio.create_task(first.consume("q", lambda _: None, on_cancel=_raise))
    await _turns()
    connection.data_received(_from_broker(1, spec.Basic.ConsumeOk("a")))
    await consuming
    second_opening = asyncio.create_task(connection.channel(confirms=True))
    await _turns()
    connection.data_received(_from_broker(2, spec.Channel.OpenOk()))
    await _turns()
    connection.data_received(_from_broker(2, spec.Confirm.SelectOk()))
    second = await second_opening
    pending = second.publish("", "q", b"x", Properties())

    connection.data_received(_from_broker(0, spec.Connection.Close(320, "shutdown", 0, 0)))

    assert isinstance(connection.closed.result(), ConnectionClosed)
    assert not first.is_open and not second.is_open
    assert pending is not None
    with pytest.raises(ConnectionClosed):
        await pending


async def test_a_raising_broker_cancel_callback_leaves_the_channel_working(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=False)
    consuming = asyncio.create_task(channel.consume("q", lambda _: None, on_cancel=_raise))
    await _turns()
    connection.data_received(_from_broker(1, spec.Basic.ConsumeOk("a")))
    await consuming
    connection.data_received(_from_broker(1, spec.Basic.Cancel("a")))
    assert not channel.has_consumer("a") and channel.is_open
    assert not connection.closed.done()


def _raise(tag: str) -> None:
    raise RuntimeError(f"a user's callback fails for {tag}")


# --- confirms --------------------------------------------------------------------------------


async def test_a_multiple_ack_after_many_single_ones_settles_only_what_is_left(wired: Wired) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    futures = [channel.publish("", "q", b"x", Properties()) for _ in range(1000)]
    singles = b"".join(codec.method_frame(1, 60, 80, codec.u64(tag) + b"\x00") for tag in range(1, 996))
    connection.data_received(singles + codec.method_frame(1, 60, 80, codec.u64(998) + b"\x01"))
    assert [future is not None and future.done() for future in futures] == [True] * 998 + [False] * 2
    assert list(channel._unconfirmed) == [999, 1000]


class _CountingDict(OrderedDict[int, "asyncio.Future[None]"]):
    """The channel's table of unconfirmed publishes, counting every entry it is asked about."""

    touched = 0

    def __iter__(self) -> Iterator[int]:
        for key in super().__iter__():
            self.touched += 1
            yield key

    def pop(self, key: int, *default: Any) -> Any:
        self.touched += 1
        return super().pop(key, *default)

    def popitem(self, last: bool = True) -> tuple[int, asyncio.Future[None]]:
        self.touched += 1
        return super().popitem(last)

    def get(self, key: int, default: Any = None) -> Any:
        self.touched += 1
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.touched += 1
        return super().__contains__(key)

    def __getitem__(self, key: int) -> asyncio.Future[None]:
        self.touched += 1
        return super().__getitem__(key)


async def test_a_multiple_ack_costs_what_it_settles_not_every_publish_since_the_last(wired: Wired) -> None:
    """The 170 ms stall after 2M single acks: settling a multiple ack walked every tag since
    the last one. It looks at what is left to settle, and one more."""
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    table = channel._unconfirmed = _CountingDict()
    count = 20_000
    futures = [channel.publish("", "q", b"x", Properties()) for _ in range(count)]
    singles = b"".join(codec.method_frame(1, 60, 80, codec.u64(tag) + b"\x00") for tag in range(1, count - 4))
    connection.data_received(singles)
    table.touched = 0
    connection.data_received(codec.method_frame(1, 60, 80, codec.u64(count - 2) + b"\x01"))
    assert [f is not None and f.done() for f in futures[-6:]] == [True] * 4 + [False] * 2
    assert list(super(_CountingDict, table).__iter__()) == [count - 1, count]
    assert table.touched <= 3 * 4  # the 3 left and the first one past them, a few looks each


# --- the URL ---------------------------------------------------------------------------------


def test_the_url_options_are_read_as_aiormq_reads_them() -> None:
    address = Address.parse(
        "amqps://u:p@h/vh?heartbeat=10&timeout=2.5&cafile=/ca.pem&certfile=/c.pem&keyfile=/k.pem"
        "&no_verify_ssl=1&auth=external&name=tracker"
    )
    assert (address.heartbeat, address.timeout, address.auth, address.name) == (
        10,
        2.5,
        "EXTERNAL",
        "tracker",
    )
    assert (address.cafile, address.certfile, address.keyfile, address.verify) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
        False,
    )
    plain = Address.parse("amqp://h/")
    assert (plain.heartbeat, plain.connect_timeout(), plain.auth, plain.verify) == (15, 10.0, "PLAIN", True)
    # a caller's timeout is the default; the URL's, when it gives one, wins on every connection
    assert (plain.connect_timeout(3.0), address.connect_timeout(3.0)) == (3.0, 2.5)
    assert Address.parse("amqp://h/?heartbeat=0").heartbeat == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("hearbeat=5", "option this client does not know: 'hearbeat'"),
        ("heartbeat=5&heartbeat=6", "twice"),
        ("heartbeat=soon", "whole number of seconds"),
        ("heartbeat=70000", "out of range"),
        ("timeout=0", "must be positive"),
        ("cafile=/ca.pem", "use amqps://"),
        ("auth=kerberos", "plain or external"),
    ],
)
def test_a_url_option_the_client_does_not_understand_is_refused(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Address.parse(f"amqp://u:p@h/vh?{query}")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("auth=external", "give certfile"),
        ("keyfile=/k.pem", "keyfile without certfile"),
        ("no_verify_ssl=maybe", "1 or 0"),
    ],
)
def test_tls_options_that_do_not_fit_together_are_refused(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Address.parse(f"amqps://u:p@h/vh?{query}")


def test_external_auth_names_the_user_its_certificate_maps_to() -> None:
    with pytest.raises(ValueError, match="name the user the broker maps the certificate to"):
        Address.parse("amqps://h/vh?auth=external&certfile=/c.pem")
    assert login_user("amqps://svc@h/vh?auth=external&certfile=/c.pem") == "svc"
    assert login_user("amqp://h/") == "guest"


def test_the_tls_context_follows_the_url() -> None:
    assert Address.parse("amqp://h/").ssl_context() is None
    strict = Address.parse("amqps://h/").ssl_context()
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    loose = Address.parse("amqps://h/?no_verify_ssl=1").ssl_context()
    assert loose is not None and loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    with pytest.raises(FileNotFoundError):
        Address.parse("amqps://h/?cafile=/nowhere/ca.pem").ssl_context()
