"""A lean AMQP 0-9-1 client on an asyncio Protocol, for the paths every run goes through.

aio-pika spends about 0.2 ms of CPU on each message it sends or receives (pamqp objects, a
future and a lock per frame); on a 2-core machine that alone caps a tracker near 1,500
round trips a second. This client parses the hot frames straight from the socket buffer and
writes a publish as one `bytes`: about 10x cheaper (`bench/amqp_ceiling.py` measures it
against aio-pika and aiormq; docs/decisions/0001-own-amqp-client.md records why).

It does one connection's worth of work and no more: channels, publisher confirms (with
`mandatory` returns matched to their publish), consumers (with the broker's cancel
notification), acks, declares and binds, heartbeats, back-pressure and blocked connections.
It does not reconnect: a lost connection resolves `Connection.closed`, fails every call in
flight, and the owner (`Link`) opens a new one.

Writes are held back twice, and `Channel.writable()` waits out both: the socket's buffer
over its high-water mark (asyncio's `pause_writing`), and the broker's `connection.blocked`
(a memory or disk alarm). Past `max_buffer` bytes waiting, a publish raises
`WriteBufferFull` instead of growing the buffer without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pamqp import commands as spec

from . import codec
from .address import Address
from .channel import Channel, Delivery, OnCancel, OnDelivery
from .errors import (
    AmqpError,
    CallTimeout,
    ChannelClosed,
    ConnectionClosed,
    Nacked,
    Returned,
    TlsRefused,
    WriteBufferFull,
)

__all__ = [
    "Address",
    "AmqpError",
    "CallTimeout",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionClosed",
    "Delivery",
    "Nacked",
    "OnCancel",
    "OnDelivery",
    "Returned",
    "TlsRefused",
    "WriteBufferFull",
]

log = logging.getLogger(__name__)

_FRAME_MAX = 131_072
_CHANNEL_MAX = 2047
# the socket's buffer: pause publishers past 1 MiB, let them go again under 256 KiB
_WRITE_HIGH = 1 << 20
_WRITE_LOW = 1 << 18
# what may wait to be written before a publish is refused: a publisher that does not wait
_MAX_BUFFER = 64 << 20
_CALL_TIMEOUT = 30.0

_CONNECTION_CLOSE = codec.index(10, 50)
_CONNECTION_CLOSE_OK = codec.index(10, 51)
_BLOCKED = codec.index(10, 60)
_UNBLOCKED = codec.index(10, 61)
_U32 = codec._U32.unpack_from


class Connection(asyncio.Protocol):
    """One AMQP connection. Open it with `await Connection.open(url, name=...)`."""

    def __init__(
        self, name: str, *, call_timeout: float = _CALL_TIMEOUT, max_buffer: int = _MAX_BUFFER
    ) -> None:
        self.name = name
        self.frame_max = _FRAME_MAX
        self.heartbeat = 0
        self.call_timeout = call_timeout
        self.max_buffer = max_buffer
        # the broker's connection.blocked, with its reason ("low on memory"), until unblocked
        self.blocked = False
        self.blocked_reason: str | None = None
        # the socket's buffer is over its high-water mark
        self.paused = False
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[AmqpError] = self.loop.create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._channels: dict[int, Channel] = {}
        self._next_channel = 1
        self._channel_max = _CHANNEL_MAX
        self._handshake: asyncio.Queue[bytes] = asyncio.Queue()
        self._close_ok: asyncio.Future[None] = self.loop.create_future()
        self._last_received = self.loop.time()
        self._heartbeats: asyncio.Task[None] | None = None
        self._outgoing: list[bytes] = []
        self._outgoing_size = 0

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        name: str,
        timeout: float | None = None,
        call_timeout: float = _CALL_TIMEOUT,
        max_buffer: int = _MAX_BUFFER,
    ) -> Connection:
        """Connect and log in, within the URL's `timeout`, else `timeout`, else 10 s."""
        address = Address.parse(url)
        limit = address.connect_timeout(timeout)
        context = address.ssl_context()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(limit):
            try:
                _, connection = await loop.create_connection(
                    lambda: cls(address.name or name, call_timeout=call_timeout, max_buffer=max_buffer),
                    address.host,
                    address.port,
                    ssl=context,
                    server_hostname=address.host if context is not None else None,
                )
            except ssl.SSLError as exc:
                raise TlsRefused(_tls_failure(address, exc)) from exc
            try:
                await connection._negotiate(address)
            except BaseException:
                connection.abort()
                raise
        return connection

    async def _negotiate(self, address: Address) -> None:
        self.write(codec.PROTOCOL_HEADER)
        start: spec.Connection.Start = await self._expect(spec.Connection.Start)
        mechanisms = start.mechanisms.decode() if isinstance(start.mechanisms, bytes) else start.mechanisms
        if address.auth not in mechanisms.split():
            raise AmqpError(f"the broker offers no {address.auth} login (it offers {mechanisms})")
        properties: dict[str, Any] = {
            "product": "baton",
            "connection_name": self.name,
            "capabilities": {
                "publisher_confirms": True,
                "consumer_cancel_notify": True,
                "basic.nack": True,
                "connection.blocked": True,
                "authentication_failure_close": True,
            },
        }
        login = "" if address.auth == "EXTERNAL" else f"\x00{address.user}\x00{address.password}"
        self.write(
            codec.encode_method(
                0,
                spec.Connection.StartOk(client_properties=properties, mechanism=address.auth, response=login),
            )
        )
        tune: spec.Connection.Tune = await self._expect(spec.Connection.Tune)
        self._channel_max = min(tune.channel_max or _CHANNEL_MAX, _CHANNEL_MAX)
        self.frame_max = min(tune.frame_max or _FRAME_MAX, _FRAME_MAX)
        # ours unless the broker wants beats sooner; 0 in the URL turns them off
        wanted = address.heartbeat
        self.heartbeat = min(tune.heartbeat, wanted) if tune.heartbeat and wanted else wanted
        self.write(
            codec.encode_method(
                0,
                spec.Connection.TuneOk(
                    channel_max=self._channel_max, frame_max=self.frame_max, heartbeat=self.heartbeat
                ),
            )
        )
        self.write(codec.encode_method(0, spec.Connection.Open(virtual_host=address.vhost)))
        await self._expect(spec.Connection.OpenOk)
        if self.heartbeat:
            self._heartbeats = asyncio.create_task(self._beat(), name=f"{self.name}-heartbeat")

    async def _expect(self, kind: type[Any]) -> Any:
        closed = asyncio.ensure_future(asyncio.shield(self.closed))
        got = asyncio.ensure_future(self._handshake.get())
        try:
            either: set[asyncio.Future[Any]] = {closed, got}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not got.done():
                got.cancel()
        if not got.done() or got.cancelled():
            raise self.closed.result()
        method = codec.decode_method(got.result())
        if not isinstance(method, kind):
            raise AmqpError(f"expected {kind.name} from the broker, got {method.name}")
        return method

    async def _beat(self) -> None:
        while not self.closed.done():
            await asyncio.sleep(self.heartbeat / 2)
            silence = self.loop.time() - self._last_received
            if silence > 2 * self.heartbeat:
                log.warning(
                    "%s: nothing from the broker in %.0fs (heartbeat %ds); dropping the connection",
                    self.name,
                    silence,
                    self.heartbeat,
                )
                self.abort(f"no heartbeat from the broker in {silence:.0f}s")
                return
            with contextlib.suppress(AmqpError):
                self.write(codec.HEARTBEAT_FRAME)

    async def channel(self, *, confirms: bool = False, prefetch: int = 0) -> Channel:
        """A new channel. Cancelled (or timed out) half-way, it is closed again, and its
        number stays taken until the broker has closed it too."""
        if self.closed.done():
            raise ConnectionClosed(f"{self.name}: the connection is closed")
        number = self._next_channel
        while number in self._channels:
            number = number % self._channel_max + 1
            if number == self._next_channel:
                raise AmqpError("no free channel number")
        self._next_channel = number % self._channel_max + 1
        channel = Channel(self, number)
        self._channels[number] = channel
        try:
            await channel.open()
            if confirms:
                await channel.confirm_select()
            if prefetch:
                await channel.qos(prefetch)
        except BaseException:
            if self._channels.get(number) is channel and not channel._abandoned:
                if channel.is_open:  # opened, then a later step failed: close it on the broker too
                    channel._abandon("its set-up failed")
                else:
                    self._channels.pop(number, None)
            raise
        return channel

    @property
    def channels(self) -> Mapping[int, Channel]:
        """The channels by number: open ones, and closed ones the broker has not closed yet."""
        return MappingProxyType(self._channels)

    def forget(self, number: int) -> None:
        self._channels.pop(number, None)

    # --- writing ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue frames; they go out together at the end of this turn of the event loop (a
        batch of publishes, or a reply and its ack, costs one system call, not one each)."""
        if self._transport is None or self.closed.done():
            raise ConnectionClosed(f"{self.name}: the connection is closed")
        if not self._outgoing:
            self.loop.call_soon(self._flush)
        self._outgoing.append(data)
        self._outgoing_size += len(data)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        self._outgoing_size = 0
        if self._transport is not None and not self.closed.done() and outgoing:
            self._transport.write(b"".join(outgoing))

    @property
    def buffered(self) -> int:
        """Bytes written by us and not yet taken by the socket."""
        transport = self._transport
        return self._outgoing_size + (transport.get_write_buffer_size() if transport is not None else 0)

    @property
    def can_write(self) -> bool:
        """Neither the socket nor the broker holds writes back, and the connection is open:
        `writable()` would return at once (a check without a coroutine, for the hot paths)."""
        return self._writable.is_set() and not self.closed.done()

    def holding_back(self) -> str:
        """Why writes wait, for logs and readiness checks ("" when they do not)."""
        why = []
        if self.blocked:
            why.append(f"the broker blocked the connection: {self.blocked_reason}")
        if self.paused:
            why.append("the socket's buffer is full")
        return "; ".join(why)

    async def writable(self, *, timeout: float | None = None) -> None:
        """Wait until neither the socket nor the broker holds writes back; `ConnectionClosed`
        if the connection goes meanwhile, `TimeoutError` after `timeout`."""
        if self._writable.is_set():
            if self.closed.done():
                raise self.closed.result()
            return
        waiting: asyncio.Future[Any] = asyncio.ensure_future(self._writable.wait())
        closed: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(self.closed))
        try:
            done, _ = await asyncio.wait(
                {waiting, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiting.cancel()
            closed.cancel()
        if self.closed.done():
            raise self.closed.result()
        if not done:
            raise TimeoutError(
                f"{self.name}: writes still held back after {timeout:g}s ({self.holding_back()})"
            )

    def _update_writable(self) -> None:
        if self.blocked or self.paused:
            self._writable.clear()
        else:
            self._writable.set()

    # --- closing ------------------------------------------------------------------------

    async def close(self, *, timeout: float = 2.0) -> None:
        if self.closed.done():
            return
        with contextlib.suppress(AmqpError):
            self.write(
                codec.encode_method(
                    0, spec.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._close_ok), timeout)
        if self._transport is not None:
            self._transport.close()
        self._lost(ConnectionClosed(f"{self.name}: closed by the client"))

    def abort(self, why: str = "connection aborted") -> None:
        if self._transport is not None:
            self._transport.abort()
        self._lost(ConnectionClosed(f"{self.name}: {why}"))

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport
        self._transport.set_write_buffer_limits(high=_WRITE_HIGH, low=_WRITE_LOW)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(ConnectionClosed(f"{self.name}: connection lost ({exc or 'closed by the broker'})"))

    def pause_writing(self) -> None:
        self.paused = True
        self._update_writable()

    def resume_writing(self) -> None:
        self.paused = False
        self._update_writable()

    def _lost(self, reason: AmqpError) -> None:
        """Everything that waits on the connection hears it is gone, whatever a callback does."""
        if self._heartbeats is not None and self._heartbeats is not asyncio.current_task():
            self._heartbeats.cancel()
        channels = list(self._channels.values())
        self._channels.clear()
        if not self.closed.done():
            self.closed.set_result(reason)
        if not self._close_ok.done():
            self._close_ok.set_result(None)
        self._writable.set()  # waiters wake, and find the connection closed
        for channel in channels:
            try:
                channel._closed(reason)
            except Exception:
                log.exception("%s: closing channel %d failed", self.name, channel.number)

    def data_received(self, data: bytes) -> None:
        self._last_received = self.loop.time()
        buffer = self._buffer
        buffer += data
        pos, size = 0, len(buffer)
        unpack = codec.FRAME_HEADER.unpack_from
        channels = self._channels
        try:
            while size - pos >= 8:
                kind, number, length = unpack(buffer, pos)
                end = pos + 7 + length
                if end >= size:
                    break
                if buffer[end] != codec.FRAME_END:
                    raise codec.FrameError("a frame does not end with 0xCE")
                payload = bytes(buffer[pos + 7 : end])
                pos = end + 1
                if kind == codec.METHOD:
                    if number == 0:
                        self._on_connection_method(payload)
                    elif (channel := channels.get(number)) is not None:
                        channel.on_method(_U32(payload)[0], payload)
                elif kind == codec.HEADER:
                    if (channel := channels.get(number)) is not None:
                        channel.on_header(payload)
                elif kind == codec.BODY:
                    if (channel := channels.get(number)) is not None:
                        channel.on_body(payload)
                elif kind != codec.HEARTBEAT:
                    raise codec.FrameError(f"unknown frame type {kind}")
        except Exception as exc:  # a frame we cannot read: the stream is lost, so is the connection
            log.error(
                "%s: %s; dropping the connection",
                self.name,
                exc,
                exc_info=not isinstance(exc, codec.FrameError),
            )
            self.abort(f"unreadable frame from the broker: {exc}")
            return
        finally:
            del buffer[:pos]

    def _on_connection_method(self, payload: bytes) -> None:
        index = _U32(payload)[0]
        if index == _CONNECTION_CLOSE:
            close: spec.Connection.Close = codec.decode_method(payload)  # type: ignore[assignment]
            with contextlib.suppress(AmqpError):
                self.write(codec.encode_method(0, spec.Connection.CloseOk()))
                self._flush()  # close-ok goes out before the transport closes
            log.warning(
                "%s: the broker closed the connection: %d %s", self.name, close.reply_code, close.reply_text
            )
            self._lost(
                ConnectionClosed(f"{self.name}: closed by the broker: {close.reply_code} {close.reply_text}")
            )
            if self._transport is not None:
                self._transport.close()
        elif index == _CONNECTION_CLOSE_OK:
            if not self._close_ok.done():
                self._close_ok.set_result(None)
        elif index == _BLOCKED:
            blocked: spec.Connection.Blocked = codec.decode_method(payload)  # type: ignore[assignment]
            self.blocked, self.blocked_reason = True, blocked.reason or "no reason given"
            self._update_writable()
            log.warning("%s: the broker blocks publishing: %s", self.name, self.blocked_reason)
        elif index == _UNBLOCKED:
            self.blocked, self.blocked_reason = False, None
            self._update_writable()
            log.warning("%s: the broker unblocked publishing", self.name)
        else:
            self._handshake.put_nowait(payload)


def _tls_failure(address: Address, exc: ssl.SSLError) -> str:
    where = f"TLS with the broker at {address.host}:{address.port} failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = address.cafile or address.capath or "the system's CA certificates"
        return (
            f"{where}: its certificate did not verify against {trusted} ({exc.verify_message}); "
            "give the broker's CA as cafile= in the URL (no_verify_ssl=1 skips the check)"
        )
    return f"{where}: {exc.reason or exc}"
