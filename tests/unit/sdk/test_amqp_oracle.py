"""`baton._amqp`'s hand-written codec held to pamqp (the codec aio-pika and aiormq use) as an
oracle: what one writes, the other reads the same, for field tables, message properties and
whole publishes (method, content header, body frames)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands as spec
from pamqp import decode as pamqp_decode
from pamqp import encode as pamqp_encode
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from baton._amqp import codec
from baton._amqp.codec import Properties

# the SDK's autouse runtime fixture is function-scoped; it holds nothing these examples touch
_EXAMPLES = settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])

_keys = st.text(max_size=40)  # at most 160 bytes of UTF-8 (pamqp truncates keys past 128)
_moments = st.datetimes(
    # pamqp reads a timestamp past 2106 as milliseconds
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2105, 1, 1),
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(microsecond=0))


def _tree(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
        max_leaves=16,
    )


# what Baton puts in headers (bytes are sent as a byte array, 'x')
_ours = _tree(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | _moments
)
# what another client built on pamqp sends: every type it encodes, decimals and byte arrays too
_theirs = _tree(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, width=32)
    | st.text()
    | st.binary().map(bytearray)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6)
    | _moments
)


def _plain(value: Any) -> Any:
    """pamqp's types as Baton's: a byte array is bytes, a tuple a list."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


# --- field tables ----------------------------------------------------------------------------


@_EXAMPLES
@given(st.dictionaries(_keys, _ours, max_size=6))
def test_a_table_baton_writes_is_read_by_pamqp_as_written(values: dict[str, Any]) -> None:
    encoded = codec.table(values)
    consumed, decoded = pamqp_decode.field_table(encoded)
    assert consumed == len(encoded)
    assert _plain(decoded) == _plain(values)


@_EXAMPLES
@given(st.dictionaries(_keys, _theirs, max_size=6))
def test_a_table_pamqp_writes_is_read_by_baton_as_pamqp_reads_it(values: dict[str, Any]) -> None:
    encoded = pamqp_encode.field_table(values) + b"after"
    _, expected = pamqp_decode.field_table(encoded)
    decoded, end = codec.read_table(encoded, 0)
    assert encoded[end:] == b"after"
    assert decoded == _plain(expected)


def test_decimals_are_read_as_pamqp_writes_them() -> None:
    encoded = pamqp_encode.field_table({"d": Decimal("-12.34"), "z": Decimal("7")})
    assert codec.read_table(encoded, 0)[0] == {"d": Decimal("-12.34"), "z": Decimal("7")}


# --- message properties ----------------------------------------------------------------------

_short = st.text(max_size=30)
# pamqp holds exchange names to the spec's characters
_exchanges = st.from_regex(r"[a-zA-Z0-9_.:@#,/+ -]{0,40}", fullmatch=True)
_properties = st.builds(
    Properties,
    content_type=st.none() | _short,
    content_encoding=st.none() | _short,
    headers=st.dictionaries(_keys, _ours, max_size=4),
    delivery_mode=st.none() | st.sampled_from([codec.TRANSIENT, codec.PERSISTENT]),
    priority=st.none() | st.integers(0, 9),
    correlation_id=st.none() | _short,
    reply_to=st.none() | _short,
    expiration=st.none() | st.integers(0, 10**9).map(str),
    message_id=st.none() | _short,
    timestamp=st.none() | _moments,
    type=st.none() | _short,
    user_id=st.none() | _short,
    app_id=st.none() | _short,
)
_FIELDS = {"type": "message_type"}  # pamqp's names where they differ from the spec's


def _as_pamqp(properties: Properties) -> spec.Basic.Properties:
    given_ = {
        _FIELDS.get(name, name): getattr(properties, name)
        for name in Properties.__slots__
        if getattr(properties, name) not in (None, {})
    }
    if "headers" in given_:
        given_["headers"] = _pamqp_values(given_["headers"])
    return spec.Basic.Properties(**given_)


def _pamqp_values(value: Any) -> Any:
    """Baton's types as pamqp's (it sends bytes only as a bytearray)."""
    if isinstance(value, dict):
        return {key: _pamqp_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_pamqp_values(item) for item in value]
    if isinstance(value, bytes):
        return bytearray(value)
    return value


def _compare(ours: Properties, theirs: spec.Basic.Properties) -> None:
    for name in Properties.__slots__:
        mine = getattr(ours, name)
        other = getattr(theirs, _FIELDS.get(name, name))
        if name == "headers":
            assert _plain(other or {}) == _plain(mine), name
        else:
            assert other == mine, name


@_EXAMPLES
@given(_properties, st.integers(0, 2**40))
def test_a_content_header_baton_writes_is_read_by_pamqp(properties: Properties, size: int) -> None:
    flags, raw = properties.encode()
    payload = codec.u16(60) + codec.u16(0) + codec.u64(size) + codec.u16(flags) + raw
    header = ContentHeader()
    header.unmarshal(payload)
    assert header.body_size == size
    _compare(properties, header.properties)


@_EXAMPLES
@given(_properties, st.dictionaries(_keys, _theirs, max_size=4), st.integers(0, 2**40), st.none() | _short)
def test_a_content_header_pamqp_writes_is_read_by_baton_as_pamqp_reads_it(
    properties: Properties, headers: dict[str, Any], size: int, cluster_id: str | None
) -> None:
    theirs = _as_pamqp(properties)
    theirs.headers = headers or None
    theirs.cluster_id = cluster_id  # type: ignore[assignment]  # deprecated, and last: read past, never misread
    payload = ContentHeader(0, size, theirs).marshal()
    expected = ContentHeader()
    expected.unmarshal(payload)
    assert codec.body_size(payload) == size
    _compare(Properties.decode(payload, 12), expected.properties)


# --- whole publishes -------------------------------------------------------------------------


@_EXAMPLES
@given(
    st.integers(1, 2047),
    _exchanges,
    _short,
    st.booleans(),
    _properties,
    st.binary(max_size=20_000),
    st.sampled_from([4096, 8192, 131_072]),
)
def test_a_publish_baton_writes_is_read_by_pamqp_frame_by_frame(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    properties: Properties,
    body: bytes,
    frame_max: int,
) -> None:
    method = codec.publish_method(exchange, routing_key, mandatory=mandatory)
    data = codec.content_frames(channel, method, properties, body, frame_max)
    frames = []
    while data:
        consumed, number, value = pamqp_frame.unmarshal(data)
        assert number == channel and consumed <= frame_max
        frames.append(value)
        data = data[consumed:]
    publish, header, *bodies = frames
    assert isinstance(publish, spec.Basic.Publish)
    assert (publish.exchange, publish.routing_key, publish.mandatory, publish.immediate) == (
        exchange,
        routing_key,
        mandatory,
        False,
    )
    assert isinstance(header, ContentHeader) and header.body_size == len(body)
    _compare(properties, header.properties)
    pieces = [piece for piece in bodies if isinstance(piece, ContentBody)]
    assert len(pieces) == len(bodies) and all(piece.value for piece in pieces)
    assert b"".join(piece.value for piece in pieces) == body


@_EXAMPLES
@given(st.integers(1, 2047), _short, st.integers(1, 2**63 - 1), st.booleans(), _exchanges, _short)
def test_a_deliver_pamqp_writes_is_read_by_baton(
    channel: int, tag: str, delivery_tag: int, redelivered: bool, exchange: str, routing_key: str
) -> None:
    """The hot method the client parses by hand, against pamqp's encoding of it."""
    deliver = spec.Basic.Deliver(tag, delivery_tag, redelivered, exchange, routing_key)
    frame = pamqp_frame.marshal(deliver, channel)
    kind, number, size = codec.FRAME_HEADER.unpack_from(frame)
    assert (kind, number) == (codec.METHOD, channel)
    payload = frame[7 : 7 + size]
    read_tag, pos = codec.read_shortstr(payload, 4)
    assert read_tag == tag
    assert codec.read_u64(payload, pos) == delivery_tag
    assert bool(payload[pos + 8] & 1) == redelivered
    read_exchange, pos = codec.read_shortstr(payload, pos + 9)
    assert (read_exchange, codec.read_shortstr(payload, pos)[0]) == (exchange, routing_key)


def test_the_acks_baton_writes_are_what_pamqp_writes() -> None:
    assert codec.method_frame(3, 60, 80, codec.u64(7) + codec.u8(True)) == pamqp_frame.marshal(
        spec.Basic.Ack(7, True), 3
    )
    nack = codec.method_frame(3, 60, 120, codec.u64(9) + codec.u8(False << 1))
    assert nack == pamqp_frame.marshal(spec.Basic.Nack(9, False, False), 3)
    requeue = codec.method_frame(3, 60, 120, codec.u64(9) + codec.u8(True << 1))
    assert requeue == pamqp_frame.marshal(spec.Basic.Nack(9, False, True), 3)
