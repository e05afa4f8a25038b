"""AMQP 0-9-1 wire format: frames, field tables and message properties.

The hot frames are written and read by hand here: publish with its header and body, deliver,
ack and nack, return. Everything else (the handshake, declares, binds, consume-ok, close) is
rare, so it goes through pamqp (`encode_method`, `decode_method`), which has every method of
the spec. The unit tests hold this codec to pamqp as an oracle. Names follow the spec
(`shortstr`, `longstr`, `table`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp.base import Frame as Method
from pamqp.exceptions import PAMQPException

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE
_FRAME_END = b"\xce"

METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

FRAME_HEADER = struct.Struct(">BHI")
_METHOD_ID = struct.Struct(">HH")
_CONTENT_HEADER = struct.Struct(">HHQH")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class FrameError(Exception):
    """The peer sent bytes that are not AMQP 0-9-1: the connection cannot go on."""


# --- primitive fields ------------------------------------------------------------------------


def shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"short string over 255 bytes: {value[:40]!r}...")
    return _U8.pack(len(raw)) + raw


def longstr(raw: bytes) -> bytes:
    return _U32.pack(len(raw)) + raw


def read_shortstr(data: bytes, pos: int) -> tuple[str, int]:
    size = data[pos]
    end = pos + 1 + size
    return data[pos + 1 : end].decode(), end


def read_longstr(data: bytes, pos: int) -> tuple[bytes, int]:
    size = _U32.unpack_from(data, pos)[0]
    end = pos + 4 + size
    return bytes(data[pos + 4 : end]), end


# --- field tables (RabbitMQ's dialect: 's' is a short int, 'x' a byte array) -----------------


def _value(value: Any) -> bytes:
    if value is None:
        return b"V"
    if isinstance(value, bool):
        return b"t" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"I" + _I32.pack(value)
        return b"l" + _I64.pack(value)
    if isinstance(value, float):
        return b"d" + _F64.pack(value)
    if isinstance(value, str):
        return b"S" + longstr(value.encode())
    if isinstance(value, bytes | bytearray):
        return b"x" + longstr(bytes(value))
    if isinstance(value, datetime):
        return b"T" + _U64.pack(int(value.timestamp()))
    if isinstance(value, dict):
        return b"F" + table(value)
    if isinstance(value, list | tuple):
        return b"A" + longstr(b"".join(_value(v) for v in value))
    raise TypeError(f"cannot put a {type(value).__name__} in an AMQP field table")


def table(values: dict[str, Any] | None) -> bytes:
    if not values:
        return b"\x00\x00\x00\x00"
    return longstr(b"".join(shortstr(k) + _value(v) for k, v in values.items()))


def _read_value(data: bytes, pos: int) -> tuple[Any, int]:
    kind = data[pos : pos + 1]
    pos += 1
    if kind == b"S":
        raw, pos = read_longstr(data, pos)
        return raw.decode(errors="replace"), pos
    if kind == b"I":
        return _I32.unpack_from(data, pos)[0], pos + 4
    if kind == b"l":
        return _I64.unpack_from(data, pos)[0], pos + 8
    if kind == b"t":
        return bool(data[pos]), pos + 1
    if kind == b"F":
        return read_table(data, pos)
    if kind == b"A":
        size = _U32.unpack_from(data, pos)[0]
        pos += 4
        end = pos + size
        items = []
        while pos < end:
            item, pos = _read_value(data, pos)
            items.append(item)
        return items, end
    if kind == b"T":
        return datetime.fromtimestamp(_U64.unpack_from(data, pos)[0], UTC), pos + 8
    if kind == b"V":
        return None, pos
    if kind == b"x":
        return read_longstr(data, pos)
    if kind == b"d":
        return _F64.unpack_from(data, pos)[0], pos + 8
    if kind == b"f":
        return _F32.unpack_from(data, pos)[0], pos + 4
    if kind == b"b":
        return _I8.unpack_from(data, pos)[0], pos + 1
    if kind == b"B":
        return data[pos], pos + 1
    if kind == b"s":
        return _I16.unpack_from(data, pos)[0], pos + 2
    if kind == b"u":
        return _U16.unpack_from(data, pos)[0], pos + 2
    if kind == b"i":
        return _U32.unpack_from(data, pos)[0], pos + 4
    if kind == b"D":
        scale = data[pos]
        unscaled = _I32.unpack_from(data, pos + 1)[0]
        return Decimal(unscaled).scaleb(-scale), pos + 5
    raise FrameError(f"unknown field type {kind!r} in a table")


def read_table(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    size = _U32.unpack_from(data, pos)[0]
    pos += 4
    end = pos + size
    values: dict[str, Any] = {}
    while pos < end:
        key, pos = read_shortstr(data, pos)
        values[key], pos = _read_value(data, pos)
    return values, end


# --- message properties ----------------------------------------------------------------------

_CONTENT_TYPE = 1 << 15
_CONTENT_ENCODING = 1 << 14
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_PRIORITY = 1 << 11
_CORRELATION_ID = 1 << 10
_REPLY_TO = 1 << 9
_EXPIRATION = 1 << 8
_MESSAGE_ID = 1 << 7
_TIMESTAMP = 1 << 6
_TYPE = 1 << 5
_USER_ID = 1 << 4
_APP_ID = 1 << 3

PERSISTENT = 2
TRANSIENT = 1


@dataclass(slots=True)
class Properties:
    """A message's basic properties. `expiration` is milliseconds, as a string (the spec's)."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: datetime | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    def encode(self) -> tuple[int, bytes]:
        """The property flags and the property list, in the spec's order."""
        flags = 0
        parts: list[bytes] = []
        if self.content_type is not None:
            flags |= _CONTENT_TYPE
            parts.append(shortstr(self.content_type))
        if self.content_encoding is not None:
            flags |= _CONTENT_ENCODING
            parts.append(shortstr(self.content_encoding))
        if self.headers:
            flags |= _HEADERS
            parts.append(table(self.headers))
        if self.delivery_mode is not None:
            flags |= _DELIVERY_MODE
            parts.append(_U8.pack(self.delivery_mode))
        if self.priority is not None:
            flags |= _PRIORITY
            parts.append(_U8.pack(self.priority))
        if self.correlation_id is not None:
            flags |= _CORRELATION_ID
            parts.append(shortstr(self.correlation_id))
        if self.reply_to is not None:
            flags |= _REPLY_TO
            parts.append(shortstr(self.reply_to))
        if self.expiration is not None:
            flags |= _EXPIRATION
            parts.append(shortstr(self.expiration))
        if self.message_id is not None:
            flags |= _MESSAGE_ID
            parts.append(shortstr(self.message_id))
        if self.timestamp is not None:
            flags |= _TIMESTAMP
            parts.append(_U64.pack(int(self.timestamp.timestamp())))
        if self.type is not None:
            flags |= _TYPE
            parts.append(shortstr(self.type))
        if self.user_id is not None:
            flags |= _USER_ID
            parts.append(shortstr(self.user_id))
        if self.app_id is not None:
            flags |= _APP_ID
            parts.append(shortstr(self.app_id))
        return flags, b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, pos: int = 0) -> Properties:
        flags = _U16.unpack_from(data, pos)[0]
        pos += 2
        if flags & 1:
            raise FrameError("property flags continue past one word: not AMQP 0-9-1 basic properties")
        props = cls()
        if flags & _CONTENT_TYPE:
            props.content_type, pos = read_shortstr(data, pos)
        if flags & _CONTENT_ENCODING:
            props.content_encoding, pos = read_shortstr(data, pos)
        if flags & _HEADERS:
            props.headers, pos = read_table(data, pos)
        if flags & _DELIVERY_MODE:
            props.delivery_mode = data[pos]
            pos += 1
        if flags & _PRIORITY:
            props.priority = data[pos]
            pos += 1
        if flags & _CORRELATION_ID:
            props.correlation_id, pos = read_shortstr(data, pos)
        if flags & _REPLY_TO:
            props.reply_to, pos = read_shortstr(data, pos)
        if flags & _EXPIRATION:
            props.expiration, pos = read_shortstr(data, pos)
        if flags & _MESSAGE_ID:
            props.message_id, pos = read_shortstr(data, pos)
        if flags & _TIMESTAMP:
            props.timestamp = datetime.fromtimestamp(_U64.unpack_from(data, pos)[0], UTC)
            pos += 8
        if flags & _TYPE:
            props.type, pos = read_shortstr(data, pos)
        if flags & _USER_ID:
            props.user_id, pos = read_shortstr(data, pos)
        if flags & _APP_ID:
            props.app_id, pos = read_shortstr(data, pos)
        return props


# --- frames ----------------------------------------------------------------------------------


def encode_method(channel: int, method: Method) -> bytes:
    """A rare method's frame, encoded by pamqp."""
    return pamqp_frame.marshal(method, channel)


def decode_method(payload: bytes) -> Method:
    """A rare method from its frame's payload (class and method ids first), decoded by pamqp."""
    index = _U32.unpack_from(payload, 0)[0]
    kind = commands.INDEX_MAPPING.get(index)
    if kind is None:
        raise FrameError(f"unknown method {index >> 16}.{index & 0xFFFF}")
    method: Method = kind()
    try:
        method.unmarshal(payload[4:])
    except (PAMQPException, struct.error, ValueError, IndexError) as exc:
        raise FrameError(f"a {method.name} that cannot be read: {exc}") from exc
    return method


def index(class_id: int, method_id: int) -> int:
    """pamqp's key for a method: the class and method ids as one number."""
    return class_id << 16 | method_id


def method_frame(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    payload = _METHOD_ID.pack(class_id, method_id) + arguments
    return FRAME_HEADER.pack(METHOD, channel, len(payload)) + payload + _FRAME_END


def content_frames(channel: int, method: bytes, properties: Properties, body: bytes, frame_max: int) -> bytes:
    """A content-bearing method (publish) with its header and body frames, the body split to
    fit `frame_max`."""
    flags, props = properties.encode()
    header = _CONTENT_HEADER.pack(60, 0, len(body), flags) + props
    parts = [
        FRAME_HEADER.pack(METHOD, channel, len(method)),
        method,
        _FRAME_END,
        FRAME_HEADER.pack(HEADER, channel, len(header)),
        header,
        _FRAME_END,
    ]
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        parts += (FRAME_HEADER.pack(BODY, channel, len(piece)), piece, _FRAME_END)
    return b"".join(parts)


def publish_method(exchange: str, routing_key: str, *, mandatory: bool) -> bytes:
    return (
        b"\x00\x3c\x00\x28\x00\x00"
        + shortstr(exchange)
        + shortstr(routing_key)
        + (b"\x01" if mandatory else b"\x00")
    )


def method_id(payload: bytes) -> tuple[int, int]:
    return _METHOD_ID.unpack_from(payload)  # type: ignore[return-value]


def body_size(header_payload: bytes) -> int:
    return _U64.unpack_from(header_payload, 4)[0]  # type: ignore[no-any-return]


def u8(value: int) -> bytes:
    return _U8.pack(value)


def u16(value: int) -> bytes:
    return _U16.pack(value)


def u32(value: int) -> bytes:
    return _U32.pack(value)


def u64(value: int) -> bytes:
    return _U64.pack(value)


def read_u16(data: bytes, pos: int) -> int:
    return _U16.unpack_from(data, pos)[0]  # type: ignore[no-any-return]


def read_u32(data: bytes, pos: int) -> int:
    return _U32.unpack_from(data, pos)[0]  # type: ignore[no-any-return]


def read_u64(data: bytes, pos: int) -> int:
    return _U64.unpack_from(data, pos)[0]  # type: ignore[no-any-return]
