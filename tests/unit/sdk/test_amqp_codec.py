"""The AMQP 0-9-1 wire format of `baton._amqp`, without a broker: field tables, message
properties, content frames, broker URLs, and a `Connection` fed the broker's frames by hand
(through a transport that keeps what it is given)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton._amqp import codec
from baton._amqp.codec import Properties
from baton._amqp.connection import (
    Address,
    AmqpError,
    Channel,
    Connection,
    ConnectionClosed,
    Delivery,
    Nacked,
    Returned,
)


def _round_trip(values: dict[str, Any]) -> dict[str, Any]:
    encoded = codec.table(values) + b"trailing"
    decoded, end = codec.read_table(encoded, 0)
    assert encoded[end:] == b"trailing"  # the reader stops exactly at the table's end
    return decoded


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (so True is not 1, b"x" is not "x")."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, bytearray):
        return type(b) is bytes and a == b
    return type(a) is type(b) and a == b


# --- field tables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        "ünïcødé ✓",
        0,
        7,
        -7,
        2**31 - 1,
        -(2**31),
        2**31,
        -(2**31) - 1,
        2**40,
        -(2**62),
        2**63 - 1,
        True,
        False,
        1.5,
        -0.25,
        1e300,
        b"\x00\x01\xfe\xff",
        b"",
        None,
        {"inner": "x", "deeper": {"n": 1, "list": [1, "two", None]}},
        {},
        [1, "two", 3.0, False, None, b"raw", {"k": "v"}, [2**40]],
        [],
        datetime(2024, 5, 17, 12, 30, 45, tzinfo=UTC),
    ],
    ids=repr,
)
def test_a_table_value_round_trips(value: Any) -> None:
    decoded = _round_trip({"key": value})
    assert _same(decoded, {"key": value}), decoded


def test_a_table_with_many_keys_round_trips_in_order() -> None:
    values: dict[str, Any] = {
        "s": "x",
        "i": 3,
        "big": 2**33,
        "b": True,
        "f": 2.5,
        "raw": b"\xce\xce",
        "none": None,
        "nested": {"a": {"b": {"c": [1, 2]}}},
        "when": datetime(2030, 1, 1, tzinfo=UTC),
    }
    decoded = _round_trip(values)
    assert _same(decoded, values)
    assert list(decoded) == list(values)


def test_integers_take_the_smallest_type_that_holds_them() -> None:
    assert codec.table({"n": 2**31 - 1})[4 + 2 : 4 + 3] == b"I"
    assert codec.table({"n": 2**31})[4 + 2 : 4 + 3] == b"l"
    assert codec.table({"n": -(2**31) - 1})[4 + 2 : 4 + 3] == b"l"


def test_a_tuple_comes_back_as_a_list_and_a_bytearray_as_bytes() -> None:
    assert _round_trip({"t": (1, "a"), "ba": bytearray(b"ab")}) == {"t": [1, "a"], "ba": b"ab"}


def test_empty_and_missing_tables_encode_as_an_empty_table() -> None:
    assert codec.table(None) == codec.table({}) == b"\x00\x00\x00\x00"
    assert codec.read_table(b"\x00\x00\x00\x00", 0) == ({}, 4)


def test_a_value_that_has_no_amqp_type_is_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        codec.table({"s": {1, 2}})


def test_a_key_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        codec.table({"k" * 256: 1})


def test_field_types_other_clients_send_are_read() -> None:
    """RabbitMQ's dialect: 's' short int, 'u' unsigned short, 'b'/'B' bytes, 'i' unsigned long,
    'f' float, 'D' decimal."""
    fields = (
        codec.shortstr("s")
        + b"s"
        + struct.pack(">h", -2)
        + codec.shortstr("u")
        + b"u"
        + struct.pack(">H", 65535)
        + codec.shortstr("b")
        + b"b"
        + struct.pack(">b", -1)
        + codec.shortstr("B")
        + b"B\xff"
        + codec.shortstr("i")
        + b"i"
        + struct.pack(">I", 2**32 - 1)
        + codec.shortstr("f")
        + b"f"
        + struct.pack(">f", 0.5)
        + codec.shortstr("D")
        + b"D\x02"
        + struct.pack(">i", 12345)
    )
    decoded, end = codec.read_table(codec.longstr(fields), 0)
    assert end == 4 + len(fields)
    assert decoded.pop("D") == Decimal("123.45")
    assert decoded == {"s": -2, "u": 65535, "b": -1, "B": 255, "i": 2**32 - 1, "f": 0.5}


def test_an_unknown_field_type_is_a_frame_error() -> None:
    with pytest.raises(codec.FrameError, match="unknown field type"):
        codec.read_table(codec.longstr(codec.shortstr("k") + b"Z\x00"), 0)


_keys = st.text(max_size=40)  # at most 160 bytes of UTF-8: a short string
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(9999, 1, 1),
        timezones=st.just(UTC),
    ).map(lambda moment: moment.replace(microsecond=0))
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=20,
)


# the SDK's autouse runtime fixture is function-scoped; it holds nothing these examples touch
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _values, max_size=8))
def test_any_table_round_trips(values: dict[str, Any]) -> None:
    assert _same(_round_trip(values), values)


# --- message properties ----------------------------------------------------------------------


def _every_property() -> Properties:
    return Properties(
        content_type="application/json",
        content_encoding="gzip",
        headers={"x-run": "r1", "attempt": 3, "nested": {"ok": True}, "big": 2**40},
        delivery_mode=codec.PERSISTENT,
        priority=9,
        correlation_id="corr-1",
        reply_to="amq.rabbitmq.reply-to",
        expiration="60000",
        message_id="msg-1",
        timestamp=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        type="claim",
        user_id="guest",
        app_id="baton-tests",
    )


def test_properties_with_every_field_set_round_trip() -> None:
    properties = _every_property()
    flags, raw = properties.encode()
    assert flags == 0xFFF8  # all thirteen property bits, no continuation bit
    decoded = Properties.decode(b"junk" + codec.u16(flags) + raw, 4)
    assert decoded == properties


@pytest.mark.parametrize(
    "name",
    [
        "content_type",
        "content_encoding",
        "headers",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ],
)
def test_a_property_set_alone_round_trips(name: str) -> None:
    properties = Properties(**{name: getattr(_every_property(), name)})
    flags, raw = properties.encode()
    assert bin(flags).count("1") == 1
    assert Properties.decode(codec.u16(flags) + raw) == properties


def test_properties_with_nothing_set_round_trip() -> None:
    flags, raw = Properties().encode()
    assert (flags, raw) == (0, b"")
    assert Properties.decode(b"\x00\x00") == Properties()


def test_properties_with_a_continuation_flag_are_a_frame_error() -> None:
    with pytest.raises(codec.FrameError):
        Properties.decode(b"\x00\x01")


# --- frames ----------------------------------------------------------------------------------


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """Split a byte stream into (type, channel, payload), checking each frame's end octet."""
    frames = []
    pos = 0
    while pos < len(data):
        kind, channel, size = codec.FRAME_HEADER.unpack_from(data, pos)
        payload = data[pos + 7 : pos + 7 + size]
        assert len(payload) == size
        assert data[pos + 7 + size] == codec.FRAME_END
        frames.append((kind, channel, payload))
        pos += 8 + size
    assert pos == len(data)
    return frames


@pytest.mark.parametrize(
    ("body_size", "frame_max", "body_frames"),
    [
        (0, 4096, 0),
        (1, 4096, 1),
        (4088, 4096, 1),  # exactly one full frame
        (4089, 4096, 2),  # one byte over
        (3 * 4088, 4096, 3),
        (1_000_000, 131_072, 8),
        (1_000_000, 4096, 245),
    ],
)
def test_a_body_is_split_into_frames_that_fit_frame_max(
    body_size: int, frame_max: int, body_frames: int
) -> None:
    body = bytes(i % 251 for i in range(body_size))
    properties = Properties(content_type="application/octet-stream", headers={"h": 1}, message_id="m")
    method = codec.publish_method("an-exchange", "a.key", mandatory=True)
    frames = _frames(codec.content_frames(5, method, properties, body, frame_max))

    assert {channel for _, channel, _ in frames} == {5}
    (m_kind, _, m_payload), (h_kind, _, h_payload), *rest = frames
    assert (m_kind, m_payload) == (codec.METHOD, method)
    assert codec.method_id(m_payload) == (60, 40)
    assert h_kind == codec.HEADER
    assert codec.body_size(h_payload) == body_size
    assert Properties.decode(h_payload, 12) == properties
    assert len(rest) == body_frames
    assert all(kind == codec.BODY for kind, _, _ in rest)
    assert all(len(payload) + 8 <= frame_max for _, _, payload in frames)
    assert all(payload for _, _, payload in rest)  # no empty body frame
    assert b"".join(payload for _, _, payload in rest) == body


def test_a_method_frame_is_framed() -> None:
    frame = codec.method_frame(3, 60, 80, codec.u64(7) + codec.u8(1))
    assert _frames(frame) == [(codec.METHOD, 3, b"\x00\x3c\x00\x50" + codec.u64(7) + b"\x01")]


def test_a_publish_method_carries_exchange_routing_key_and_mandatory() -> None:
    method = codec.publish_method("ex", "rk", mandatory=True)
    assert codec.method_id(method) == (60, 40)
    exchange, pos = codec.read_shortstr(method, 6)
    routing_key, pos = codec.read_shortstr(method, pos)
    assert (exchange, routing_key, method[pos:]) == ("ex", "rk", b"\x01")
    assert codec.publish_method("ex", "rk", mandatory=False)[-1:] == b"\x00"


# --- broker URLs -----------------------------------------------------------------------------


def test_a_full_url_is_parsed() -> None:
    address = Address.parse("amqp://u:p@h:1234/vh")
    assert address == Address(
        host="h", port=1234, user="u", password="p", vhost="vh", tls=False, heartbeat=15
    )


def test_a_url_with_an_empty_path_is_the_default_vhost() -> None:
    address = Address.parse("amqp://guest:guest@127.0.0.1/")
    assert (address.host, address.port, address.vhost, address.tls) == ("127.0.0.1", 5672, "/", False)
    assert Address.parse("amqp://guest:guest@127.0.0.1").vhost == "/"


def test_a_percent_encoded_vhost_and_credentials_are_decoded() -> None:
    assert Address.parse("amqp://guest:guest@127.0.0.1/%2F").vhost == "/"
    assert Address.parse("amqp://h/a%2Fb").vhost == "a/b"
    address = Address.parse("amqp://us%40er:p%3Ass@h/")
    assert (address.user, address.password) == ("us@er", "p:ss")


def test_defaults_and_the_heartbeat_query() -> None:
    address = Address.parse("amqp://h/vh?heartbeat=15")
    assert (address.user, address.password, address.heartbeat, address.vhost) == ("guest", "guest", 15, "vh")


def test_amqps_defaults_to_port_5671_and_tls() -> None:
    address = Address.parse("amqps://u:p@broker.example/vh")
    assert (address.port, address.tls) == (5671, True)
    assert Address.parse("amqps://u:p@broker.example:6000/vh").port == 6000


@pytest.mark.parametrize("url", ["http://x", "x", "amqpx://h/"])
def test_a_url_that_is_not_amqp_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an AMQP URL"):
        Address.parse(url)


# --- a connection fed the broker's frames by hand ---------------------------------------------


class _Wire(asyncio.Transport):
    """A transport that keeps what the client writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _turns() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _method(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return codec.method_frame(channel, class_id, method_id, arguments)


def _content(channel: int, method: bytes, body: bytes, properties: Properties | None = None) -> bytes:
    return codec.content_frames(channel, method, properties or Properties(), body, 4096)


def _deliver(channel: int, tag: str, delivery_tag: int, body: bytes, routing_key: str = "q") -> bytes:
    arguments = (
        codec.shortstr(tag)
        + codec.u64(delivery_tag)
        + b"\x00"
        + codec.shortstr("")
        + codec.shortstr(routing_key)
    )
    return _content(channel, b"\x00\x3c\x00\x3c" + arguments, body)


def _return(channel: int, routing_key: str, body: bytes, properties: Properties | None = None) -> bytes:
    arguments = codec.u16(312) + codec.shortstr("NO_ROUTE") + codec.shortstr("") + codec.shortstr(routing_key)
    return _content(channel, b"\x00\x3c\x00\x32" + arguments, body, properties)


def _ack(channel: int, tag: int, *, multiple: bool = False) -> bytes:
    return _method(channel, 60, 80, codec.u64(tag) + codec.u8(multiple))


@pytest.fixture
async def wired() -> AsyncIterator[tuple[Connection, _Wire]]:
    connection = Connection("fake")
    wire = _Wire()
    connection.connection_made(wire)
    try:
        yield connection, wire
    finally:
        connection.abort()


async def _channel(connection: Connection, *, confirms: bool) -> Channel:
    opening = asyncio.create_task(connection.channel(confirms=confirms))
    await _turns()
    connection.data_received(_method(1, 20, 11, codec.longstr(b"")))  # channel.open-ok
    if confirms:
        await _turns()
        connection.data_received(_method(1, 85, 11))  # confirm.select-ok
    return await asyncio.wait_for(opening, 1)


async def test_deliveries_read_together_with_consume_ok_reach_the_consumer(
    wired: tuple[Connection, _Wire],
) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=False)
    got: list[Delivery] = []
    consuming = asyncio.create_task(channel.consume("q", got.append))
    await _turns()
    # the broker's consume-ok and the first deliveries, in one read from the socket
    connection.data_received(
        _method(1, 60, 21, codec.shortstr("ctag-1"))
        + _deliver(1, "ctag-1", 1, b"first")
        + _deliver(1, "ctag-1", 2, b"")
    )
    assert await asyncio.wait_for(consuming, 1) == "ctag-1"
    assert [(d.consumer_tag, d.delivery_tag, d.body) for d in got] == [
        ("ctag-1", 1, b"first"),
        ("ctag-1", 2, b""),
    ]


async def test_frames_split_anywhere_across_reads_are_reassembled(wired: tuple[Connection, _Wire]) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=False)
    got: list[Delivery] = []
    consuming = asyncio.create_task(channel.consume("q", got.append))
    await _turns()
    connection.data_received(_method(1, 60, 21, codec.shortstr("t")))
    await asyncio.wait_for(consuming, 1)
    bodies = [bytes(range(256)) * 40, b"\xce" * 4089, b"small"]  # several body frames each at 4096
    stream = b"".join(_deliver(1, "t", i, body) for i, body in enumerate(bodies, 1))
    for i in range(0, len(stream), 7):
        connection.data_received(stream[i : i + 7])
    assert [d.body for d in got] == bodies
    assert not connection.closed.done()


async def test_a_return_is_matched_to_its_publish_not_a_routed_one_like_it(
    wired: tuple[Connection, _Wire],
) -> None:
    """Same exchange, routing key and message id; the routed one is confirmed after the other
    is returned (as RabbitMQ does when the queue confirms late)."""
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    routed = channel.publish("", "k", b"routed", Properties(), mandatory=True)
    returned = channel.publish("", "k", b"returned", Properties(), mandatory=True)
    assert routed is not None and returned is not None
    connection.data_received(_return(1, "k", b"returned") + _ack(1, 2) + _ack(1, 1))
    await asyncio.wait_for(routed, 1)  # confirmed, not returned
    with pytest.raises(Returned) as raised:
        await asyncio.wait_for(returned, 1)
    assert (raised.value.code, raised.value.routing_key) == (312, "k")


async def test_confirms_settle_singly_and_multiply_and_nacks_fail(wired: tuple[Connection, _Wire]) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    futures = [channel.publish("", "k", b"x", Properties(message_id=str(i))) for i in range(1, 7)]
    connection.data_received(
        _ack(1, 2)  # one out of order
        + _ack(1, 3, multiple=True)  # 1 and 3
        + _method(1, 60, 120, codec.u64(4) + b"\x00")  # nack 4
        + _ack(1, 6, multiple=True)  # 5 and 6
    )
    outcomes: list[BaseException | None] = []
    for future in futures:
        assert future is not None
        try:
            await asyncio.wait_for(future, 1)
            outcomes.append(None)
        except AmqpError as exc:
            outcomes.append(exc)
    assert [type(outcome) for outcome in outcomes] == [type(None)] * 3 + [Nacked] + [type(None)] * 2


async def test_a_frame_without_its_end_octet_drops_the_connection(wired: tuple[Connection, _Wire]) -> None:
    connection, _ = wired
    channel = await _channel(connection, confirms=True)
    pending = channel.publish("", "k", b"x", Properties())
    connection.data_received(_ack(1, 1)[:-1] + b"\x00")
    assert isinstance(connection.closed.result(), ConnectionClosed)
    assert pending is not None
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(pending, 1)
    assert not channel.is_open


async def test_what_the_client_writes_is_framed(wired: tuple[Connection, _Wire]) -> None:
    connection, wire = wired
    channel = await _channel(connection, confirms=True)
    await _turns()
    del wire.written[:]
    assert connection.frame_max == 131_072  # not negotiated: the most the client asks for
    body = bytes(range(256)) * 1200
    confirm = channel.publish("ex", "rk", body, Properties(message_id="m"), mandatory=True)
    channel.ack(7, multiple=True)
    channel.nack(8, requeue=False)
    await _turns()  # the connection may hold frames back to the end of the loop's turn
    frames = _frames(bytes(wire.written))
    kinds = [codec.METHOD, codec.HEADER, codec.BODY, codec.BODY, codec.BODY, codec.METHOD, codec.METHOD]
    assert [kind for kind, _, _ in frames] == kinds
    assert {channel for _, channel, _ in frames} == {1}
    assert frames[0][2] == codec.publish_method("ex", "rk", mandatory=True)
    assert Properties.decode(frames[1][2], 12) == Properties(message_id="m")
    assert b"".join(payload for _, _, payload in frames[2:5]) == body
    assert frames[5][2] == b"\x00\x3c\x00\x50" + codec.u64(7) + b"\x01"
    assert frames[6][2] == b"\x00\x3c\x00\x78" + codec.u64(8) + b"\x00"

    connection.abort()
    assert confirm is not None
    with pytest.raises(ConnectionClosed):
        await confirm
