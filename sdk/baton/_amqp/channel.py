"""One AMQP channel: the rare synchronous methods through pamqp, the hot ones by hand.

A synchronous method (a declare, a bind, consume, close) waits for its reply at most the
connection's `call_timeout`. One that is cancelled or times out after it was written closes
its channel: the reply would still come, and be taken for the answer to the next call. So a
cancelled `consume` leaves no consumer behind, and a cancelled declare no channel that
believes it is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pamqp import commands as spec
from pamqp.base import Frame as Method

from . import codec
from .codec import Properties
from .errors import AmqpError, CallTimeout, ChannelClosed, ConnectionClosed, Nacked, Returned, WriteBufferFull
from .wire import Wire

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Method)

_ACK = codec.index(60, 80)
_DELIVER = codec.index(60, 60)
_NACK = codec.index(60, 120)
_RETURN = codec.index(60, 50)
_CANCEL = codec.index(60, 30)
_CLOSE = codec.index(20, 40)
_CLOSE_OK = codec.index(20, 41)
_FLOW = codec.index(20, 20)


@dataclass(slots=True)
class Delivery:
    """A message a consumer received. Settle it with `ack` or `nack` on its own channel."""

    channel: Channel
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers

    @property
    def message_id(self) -> str | None:
        return self.properties.message_id

    @property
    def content_type(self) -> str | None:
        return self.properties.content_type

    @property
    def correlation_id(self) -> str | None:
        return self.properties.correlation_id

    @property
    def reply_to(self) -> str | None:
        return self.properties.reply_to

    def ack(self) -> None:
        self.channel.ack(self.delivery_tag)

    def nack(self, *, requeue: bool = True) -> None:
        self.channel.nack(self.delivery_tag, requeue=requeue)


OnDelivery = Callable[[Delivery], None]
OnCancel = Callable[[str], None]


def _quietly(what: str, callback: Callable[[str], None], tag: str) -> None:
    """Run a user's callback; what it raises is logged, and stops nothing of ours."""
    try:
        callback(tag)
    except Exception:
        log.exception("%s callback for consumer %s failed", what, tag)


class Channel:
    """One AMQP channel. Synchronous methods are awaited one at a time; publishes and acks
    are written at once."""

    def __init__(self, connection: Wire, number: int) -> None:
        self.connection = connection
        self.number = number
        self.is_open = False
        self.confirming = False
        self._lock = asyncio.Lock()
        # the replies awaited (pamqp indexes), their future, and a hook run on the reply as it is read
        self._waiting: tuple[frozenset[int], asyncio.Future[Method], Callable[[Any], None] | None] | None = (
            None
        )
        self._closed_by: AmqpError | None = None
        # closed by us after a cancelled call: the number stays taken until the broker's close-ok
        self._abandoned = False
        # publisher confirms: tag -> future, in tag order (a multiple ack pops from the front);
        # the tags of mandatory publishes, to match returns
        self._next_tag = 1
        self._unconfirmed: OrderedDict[int, asyncio.Future[None]] = OrderedDict()
        # (the body too: a routed and a returned message can share exchange, key and message id)
        self._mandatory: dict[int, tuple[str, str, str | None, bytes]] = {}
        self._returns: dict[int, Returned] = {}
        self._consumers: dict[str, tuple[OnDelivery, OnCancel | None]] = {}
        # the content-bearing method being assembled: ("deliver" | "return" | "get", fields)
        self._content: tuple[str, tuple[Any, ...]] | None = None
        self._properties: Properties | None = None
        self._body_size = 0
        self._body: list[bytes] = []
        self._received = 0
        # the message a basic.get took, assembled from the frames after get-ok
        self._getting: asyncio.Future[Delivery] | None = None

    # --- synchronous methods ------------------------------------------------------------

    async def _call(
        self,
        method: Method,
        reply: type[M],
        *,
        on_reply: Callable[[M], None] | None = None,
        timeout: float | None = None,
        also: type[Method] | None = None,
    ) -> M:
        """Write `method`, wait for `reply` (or `also`, the other reply it may have: get-empty
        to a get). Cancelled or timed out once written, the channel is closed (see the
        module's docstring)."""
        replies = frozenset((reply.index,) if also is None else (reply.index, also.index))
        limit = self.connection.call_timeout if timeout is None else timeout
        future: asyncio.Future[Method] | None = None
        try:
            async with asyncio.timeout(limit):
                async with self._lock:
                    self._check_open()
                    future = asyncio.get_running_loop().create_future()
                    self._waiting = (replies, future, on_reply)  # type: ignore[arg-type]
                    self.connection.write(codec.encode_method(self.number, method))
                    try:
                        return await future  # type: ignore[return-value]
                    finally:
                        self._waiting = None
        except TimeoutError:
            if future is None:  # never written: waited too long for the lock
                raise CallTimeout(
                    f"{method.name} on channel {self.number}: the channel stayed busy"
                ) from None
            self._abandon(f"{method.name} had no reply in {limit:g}s")
            raise CallTimeout(f"{method.name} on channel {self.number}: no reply in {limit:g}s") from None
        except asyncio.CancelledError:
            # (cancelling the task cancels the future it awaits: a reply read sets a result)
            if future is not None and (future.cancelled() or not future.done()):
                self._abandon(f"{method.name} was cancelled")
            raise

    def _check_open(self) -> None:
        if self._closed_by is not None:
            raise self._closed_by
        if self.connection.closed.done():
            raise ConnectionClosed("the connection is closed")

    def _abandon(self, why: str) -> None:
        """Close the channel after a call we stopped waiting for; its number stays taken until
        the broker confirms, so that a new channel cannot get the old one's replies."""
        if self._closed_by is not None:
            return
        self._abandoned = True
        log.warning("channel %d: %s; closing it", self.number, why)
        with contextlib.suppress(AmqpError):
            self.connection.write(
                codec.encode_method(
                    self.number, spec.Channel.Close(reply_code=200, reply_text=why, class_id=0, method_id=0)
                )
            )
        self._closed(ChannelClosed(200, f"closed by the client: {why}"), forget=False)

    async def open(self) -> None:
        await self._call(spec.Channel.Open(), spec.Channel.OpenOk)
        self.is_open = True

    async def confirm_select(self) -> None:
        await self._call(spec.Confirm.Select(), spec.Confirm.SelectOk)
        self.confirming = True

    async def qos(self, prefetch_count: int) -> None:
        await self._call(spec.Basic.Qos(prefetch_count=prefetch_count), spec.Basic.QosOk)

    async def declare_queue(
        self,
        name: str,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[str, int, int]:
        """Declare (or, `passive`, check) a queue; returns its name, messages and consumers."""
        method = spec.Queue.Declare(
            queue=name,
            passive=passive,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
        )
        ok = await self._call(method, spec.Queue.DeclareOk, timeout=timeout)
        return ok.queue or name, ok.message_count or 0, ok.consumer_count or 0

    async def delete_queue(
        self, name: str, *, if_unused: bool = False, if_empty: bool = False, timeout: float | None = None
    ) -> int:
        """Delete a queue; returns how many messages it held."""
        method = spec.Queue.Delete(queue=name, if_unused=if_unused, if_empty=if_empty)
        return (await self._call(method, spec.Queue.DeleteOk, timeout=timeout)).message_count or 0

    async def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Bind; `arguments` are what a headers exchange matches (`x-match` and the headers)."""
        method = spec.Queue.Bind(queue=queue, exchange=exchange, routing_key=routing_key, arguments=arguments)
        await self._call(method, spec.Queue.BindOk, timeout=timeout)

    async def unbind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        method = spec.Queue.Unbind(
            queue=queue, exchange=exchange, routing_key=routing_key, arguments=arguments
        )
        await self._call(method, spec.Queue.UnbindOk, timeout=timeout)

    async def declare_exchange(
        self,
        name: str,
        type: str = "direct",
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Declare an exchange; a declaration that differs from the existing one closes the
        channel with `ChannelClosed` 406 (PRECONDITION_FAILED)."""
        method = spec.Exchange.Declare(
            exchange=name,
            exchange_type=type,
            passive=passive,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=arguments,
        )
        await self._call(method, spec.Exchange.DeclareOk, timeout=timeout)

    async def check_exchange(self, name: str, *, timeout: float | None = None) -> None:
        """Passive declare: raises `ChannelClosed` (404, and the channel is gone) if it is missing."""
        await self.declare_exchange(name, passive=True, timeout=timeout)

    async def delete_exchange(
        self, name: str, *, if_unused: bool = False, timeout: float | None = None
    ) -> None:
        method = spec.Exchange.Delete(exchange=name, if_unused=if_unused)
        await self._call(method, spec.Exchange.DeleteOk, timeout=timeout)

    async def bind_exchange(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        *,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Route what `source` takes on to `destination` (a RabbitMQ extension)."""
        method = spec.Exchange.Bind(
            destination=destination, source=source, routing_key=routing_key, arguments=arguments
        )
        await self._call(method, spec.Exchange.BindOk, timeout=timeout)

    async def consume(
        self,
        queue: str,
        on_delivery: OnDelivery,
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: dict[str, Any] | None = None,
        on_cancel: OnCancel | None = None,
        timeout: float | None = None,
    ) -> str:
        """Subscribe; `on_delivery` runs in the protocol's callback and must not block.
        `on_cancel` hears of the broker cancelling the consumer (its queue was deleted, say)."""
        registered: list[str] = []

        def subscribed(reply: spec.Basic.ConsumeOk) -> None:
            # registered as consume-ok is read: the first deliveries can follow it in the same read,
            # before this coroutine resumes
            tag = reply.consumer_tag or ""
            self._consumers[tag] = (on_delivery, on_cancel)
            registered.append(tag)

        method = spec.Basic.Consume(queue=queue, no_ack=no_ack, exclusive=exclusive, arguments=arguments)
        try:
            reply = await self._call(method, spec.Basic.ConsumeOk, on_reply=subscribed, timeout=timeout)
        except asyncio.CancelledError:
            # consume-ok was read, but the caller will never know the tag: undo it
            for tag in registered:
                if self._consumers.pop(tag, None) is not None:
                    with contextlib.suppress(AmqpError):
                        cancel = spec.Basic.Cancel(consumer_tag=tag, nowait=True)
                        self.connection.write(codec.encode_method(self.number, cancel))
            raise
        return reply.consumer_tag or ""

    async def get(self, queue: str, *, no_ack: bool = False, timeout: float | None = None) -> Delivery | None:
        """Take one message from `queue` (basic.get), or None when it is empty; settle it with
        `ack` or `nack` unless `no_ack`. Cancelled or timed out before the message is whole,
        the channel is closed, and the broker takes the message back."""
        got: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()

        def taking(reply: Method) -> None:
            # read with get-ok: its header and body follow, and `_complete` resolves `got`
            if isinstance(reply, spec.Basic.GetOk):
                fields = (reply.delivery_tag, reply.redelivered, reply.exchange, reply.routing_key)
                self._content = ("get", fields)
                self._getting = got

        method = spec.Basic.Get(queue=queue, no_ack=no_ack)
        reply: Method = await self._call(
            method, spec.Basic.GetOk, on_reply=taking, timeout=timeout, also=spec.Basic.GetEmpty
        )
        if isinstance(reply, spec.Basic.GetEmpty):
            return None
        limit = self.connection.call_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                return await got
        except TimeoutError:
            self._abandon(f"a got message was not whole in {limit:g}s")
            raise CallTimeout(
                f"Basic.Get on channel {self.number}: the message was not whole in {limit:g}s"
            ) from None
        except asyncio.CancelledError:
            self._abandon("a get was cancelled")
            raise
        finally:
            if self._getting is got:
                self._getting = None

    async def cancel(self, consumer_tag: str, *, timeout: float | None = None) -> None:
        await self._call(spec.Basic.Cancel(consumer_tag=consumer_tag), spec.Basic.CancelOk, timeout=timeout)
        self._consumers.pop(consumer_tag, None)

    def has_consumer(self, consumer_tag: str) -> bool:
        return self._consumers.get(consumer_tag) is not None and self._closed_by is None

    async def close(self, *, timeout: float | None = None) -> None:
        if self._closed_by is not None or self.connection.closed.done():
            return
        with contextlib.suppress(AmqpError):
            await self._call(
                spec.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0),
                spec.Channel.CloseOk,
                timeout=timeout,
            )
        self._closed(ChannelClosed(200, "closed by the client"))

    # --- asynchronous methods ------------------------------------------------------------

    async def writable(self, *, timeout: float | None = None) -> None:
        """Wait until a publish on this channel would be written without piling up: the
        socket takes writes and the broker has not blocked the connection. A publisher that
        awaits this before each publish (or batch) waits instead of buffering without limit."""
        self._check_open()
        await self.connection.writable(timeout=timeout)
        self._check_open()

    def writable_now(self) -> bool:
        """True when `writable()` would return at once: a publish now goes out without piling up."""
        return self._closed_by is None and self.is_open and self.connection.can_write

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
    ) -> asyncio.Future[None] | None:
        """Write the message now. In confirm mode, returns a future that resolves when the
        broker confirmed it, and fails with `Returned`, `Nacked`, `ChannelClosed` or
        `ConnectionClosed`. Raises `WriteBufferFull` past the connection's bound (await
        `writable()` first to wait instead)."""
        self._check_open()
        connection = self.connection
        if connection.buffered > connection.max_buffer:
            raise WriteBufferFull(
                f"{connection.name}: {connection.buffered} bytes wait to be written "
                f"(bound {connection.max_buffer}; {connection.holding_back()})"
            )
        frames = codec.content_frames(
            self.number,
            codec.publish_method(exchange, routing_key, mandatory=mandatory),
            properties,
            body,
            connection.frame_max,
        )
        connection.write(frames)
        if not self.confirming:
            return None
        tag = self._next_tag
        self._next_tag = tag + 1
        future: asyncio.Future[None] = connection.loop.create_future()
        self._unconfirmed[tag] = future
        if mandatory:
            self._mandatory[tag] = (exchange, routing_key, properties.message_id, body)
        return future

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        self._check_open()
        arguments = codec.u64(delivery_tag) + codec.u8(multiple)
        self.connection.write(codec.method_frame(self.number, 60, 80, arguments))

    def nack(self, delivery_tag: int, *, requeue: bool = True) -> None:
        self._check_open()
        self.connection.write(
            codec.method_frame(self.number, 60, 120, codec.u64(delivery_tag) + codec.u8(requeue << 1))
        )

    # --- frames from the broker ----------------------------------------------------------

    def on_method(self, index: int, payload: bytes) -> None:
        if index == _ACK:
            self._confirm(codec.read_u64(payload, 4), bool(payload[12] & 1), None)
            return
        if index == _DELIVER:
            tag, pos = codec.read_shortstr(payload, 4)
            delivery_tag = codec.read_u64(payload, pos)
            redelivered = bool(payload[pos + 8] & 1)
            exchange, pos = codec.read_shortstr(payload, pos + 9)
            routing_key, _ = codec.read_shortstr(payload, pos)
            self._content = ("deliver", (tag, delivery_tag, redelivered, exchange, routing_key))
            return
        if index == _NACK:
            self._confirm(codec.read_u64(payload, 4), bool(payload[12] & 1), Nacked("nacked by the broker"))
            return
        if index == _RETURN:
            code = codec.read_u16(payload, 4)
            text, pos = codec.read_shortstr(payload, 6)
            exchange, pos = codec.read_shortstr(payload, pos)
            routing_key, _ = codec.read_shortstr(payload, pos)
            self._content = ("return", (code, text, exchange, routing_key))
            return
        if self._abandoned:
            self._while_abandoned(index, payload)
            return
        if index == _CANCEL:  # the broker cancelled a consumer
            tag = codec.decode_method(payload).consumer_tag  # type: ignore[attr-defined]
            _, on_cancel = self._consumers.pop(tag, (None, None))
            log.warning("the broker cancelled consumer %s on channel %d", tag, self.number)
            if on_cancel is not None:
                _quietly("an on_cancel", on_cancel, tag)
            return
        if index == _CLOSE:  # the broker closed the channel
            close: spec.Channel.Close = codec.decode_method(payload)  # type: ignore[assignment]
            with contextlib.suppress(AmqpError):
                self.connection.write(codec.encode_method(self.number, spec.Channel.CloseOk()))
            self._closed(ChannelClosed(close.reply_code or 0, close.reply_text or ""))
            return
        if index == _FLOW:
            active = codec.decode_method(payload).active  # type: ignore[attr-defined]
            self.connection.write(codec.encode_method(self.number, spec.Channel.FlowOk(active=active)))
            return
        waiting = self._waiting
        if waiting is not None and index in waiting[0] and not waiting[1].done():
            reply = codec.decode_method(payload)
            if waiting[2] is not None:
                waiting[2](reply)
            waiting[1].set_result(reply)
        else:
            log.debug("unexpected method %d.%d on channel %d", index >> 16, index & 0xFFFF, self.number)

    def _while_abandoned(self, index: int, payload: bytes) -> None:
        """A channel we closed after a cancelled call: everything but the close is the past."""
        if index == _CLOSE:
            with contextlib.suppress(AmqpError):
                self.connection.write(codec.encode_method(self.number, spec.Channel.CloseOk()))
        if index in (_CLOSE, _CLOSE_OK):
            self._abandoned = False
            self.connection.forget(self.number)

    def on_header(self, payload: bytes) -> None:
        if self._content is None:
            raise codec.FrameError(f"content header without a method on channel {self.number}")
        self._properties = Properties.decode(payload, 12)
        self._body_size = codec.body_size(payload)
        self._body, self._received = [], 0
        if self._body_size == 0:
            self._complete(b"")

    def on_body(self, payload: bytes) -> None:
        if self._content is None:
            raise codec.FrameError(f"content body without a header on channel {self.number}")
        if not self._body and len(payload) == self._body_size:
            self._complete(payload)
            return
        self._body.append(payload)
        self._received += len(payload)
        if self._received >= self._body_size:
            self._complete(b"".join(self._body))

    def _complete(self, body: bytes) -> None:
        content, properties = self._content, self._properties
        self._content, self._properties, self._body = None, None, []
        assert content is not None and properties is not None
        kind, fields = content
        if kind == "deliver":
            tag, delivery_tag, redelivered, exchange, routing_key = fields
            consumer = self._consumers.get(tag)
            if consumer is None or self._abandoned:
                return  # cancelled meanwhile: the broker requeues it when the channel closes
            try:
                consumer[0](
                    Delivery(self, tag, delivery_tag, redelivered, exchange, routing_key, properties, body)
                )
            except Exception:
                log.exception("a consumer callback on channel %d failed", self.number)
            return
        if kind == "get":
            delivery_tag, redelivered, exchange, routing_key = fields
            getting, self._getting = self._getting, None
            if getting is not None and not getting.done():
                getting.set_result(
                    Delivery(self, "", delivery_tag, redelivered, exchange, routing_key, properties, body)
                )
            return
        code, text, exchange, routing_key = fields
        for tag, target in self._mandatory.items():
            if tag not in self._returns and target == (exchange, routing_key, properties.message_id, body):
                self._returns[tag] = Returned(code, text, exchange, routing_key)
                return
        log.warning("a returned message matches no publish in flight (%s/%s)", exchange, routing_key)

    def _confirm(self, tag: int, multiple: bool, error: AmqpError | None) -> None:
        unconfirmed = self._unconfirmed
        if not multiple:
            future = unconfirmed.pop(tag, None)
            if future is not None:
                self._settle(tag, future, error)
            return
        # tags are kept in order: what a multiple ack settles is at the front, and no more is looked at
        while unconfirmed:
            first = next(iter(unconfirmed))
            if first > tag:
                break
            self._settle(first, unconfirmed.popitem(last=False)[1], error)

    def _settle(self, tag: int, future: asyncio.Future[None], error: AmqpError | None) -> None:
        if self._mandatory:
            self._mandatory.pop(tag, None)
        returned = self._returns.pop(tag, None) if self._returns else None
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        elif returned is not None:
            future.set_exception(returned)
        else:
            future.set_result(None)

    def _closed(self, reason: AmqpError, *, forget: bool = True) -> None:
        if self._closed_by is not None:
            return
        self._closed_by = reason
        self.is_open = False
        waiting = self._waiting
        if waiting is not None and not waiting[1].done():
            waiting[1].set_exception(reason)
        getting, self._getting = self._getting, None
        if getting is not None and not getting.done():
            getting.set_exception(reason)
        for future in self._unconfirmed.values():
            if not future.done():
                future.set_exception(reason)
        self._unconfirmed.clear()
        self._mandatory.clear()
        self._returns.clear()
        cancelled = [(tag, on_cancel) for tag, (_, on_cancel) in self._consumers.items()]
        self._consumers.clear()
        if forget:
            self.connection.forget(self.number)
        for tag, on_cancel in cancelled:
            if on_cancel is not None:
                _quietly("an on_cancel", on_cancel, tag)
