"""The consumer base: decode, handle, then settle every message in exactly one place.

A handler commits its PostgreSQL transaction before returning, so an ACK always follows a
commit. A message that cannot be decoded or is invalid is dead-lettered to `baton.dead` with the
reason in a header; a handler that fails for a passing reason (the database is away) gets the
message redelivered, and the queue's delivery limit dead-letters it if it keeps failing. One bad
message never stops the consumer, and a watchdog re-subscribes if the broker cancelled us.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from enum import Enum
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from baton_schemas.envelopes import DeadLetterHeaders

from .connection import Broker
from .publisher import Publisher, json_message
from .topology import DEAD

log = logging.getLogger(__name__)

_REASON_LIMIT = 2000


class AckPolicy(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    DEAD_LETTER = "dead-letter"


class DeadLetter(Exception):
    """Raised by a handler: this message can never be handled; park it with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Consumer(abc.ABC):
    queue_name: str

    def __init__(
        self,
        broker: Broker,
        *,
        prefetch: int = 32,
        watchdog_interval: float = 2.0,
        requeue_delay: float = 0.5,
    ) -> None:
        self._broker = broker
        self._prefetch = prefetch
        self._watchdog_interval = watchdog_interval
        self._requeue_delay = requeue_delay
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._publisher: Publisher | None = None
        self._reply_channel: AbstractChannel | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False

    @abc.abstractmethod
    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Handle one message; commit before returning. Raise DeadLetter for a hopeless one."""

    async def start(self) -> None:
        await self._subscribe()
        self._watchdog = asyncio.create_task(self._watch(), name=f"{self.queue_name}-watchdog")

    async def _subscribe(self) -> None:
        self._channel = await self._broker.new_channel(prefetch=self._prefetch)
        self._publisher = Publisher(self._channel)
        # replies go to direct reply-to pseudo-queues: no confirm to wait for, nothing to keep
        self._reply_channel = await self._broker.connection.channel(publisher_confirms=False)
        self._queue = await self._channel.get_queue(self.queue_name, ensure=True)
        self._consumer_tag = await self._queue.consume(self._on_message)
        log.info("consuming %s", self.queue_name)

    def _is_subscribed(self) -> bool:
        channel = self._channel
        if channel is None or channel.is_closed or self._consumer_tag is None:
            return False
        underlying = getattr(channel, "_channel", None)  # aiormq's channel knows its consumers
        consumers = getattr(underlying, "consumers", None)
        return consumers is None or self._consumer_tag in consumers

    async def _watch(self) -> None:
        """The broker may cancel a consumer (queue deleted, node restarted): notice and resubscribe."""
        while not self._stopping:
            await asyncio.sleep(self._watchdog_interval)
            if self._stopping or self._is_subscribed():
                continue
            log.warning("consumer on %s is gone; subscribing again", self.queue_name)
            try:
                if self._channel is not None and not self._channel.is_closed:
                    with contextlib.suppress(Exception):
                        await self._channel.close()
                await self._subscribe()
            except Exception as exc:
                log.warning("re-subscribing to %s failed (%s); will retry", self.queue_name, exc)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            try:
                await self.handle(message)
                policy, reason = AckPolicy.ACK, None
            except DeadLetter as dead:
                policy, reason = AckPolicy.DEAD_LETTER, dead.reason
            except asyncio.CancelledError:
                policy, reason = AckPolicy.REQUEUE, "consumer stopping"
            except Exception as exc:
                log.exception("handling a message from %s failed; it will be redelivered", self.queue_name)
                policy, reason = AckPolicy.REQUEUE, repr(exc)
            await self._settle(message, policy, reason)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _settle(self, message: AbstractIncomingMessage, policy: AckPolicy, reason: str | None) -> None:
        """The one place that acks."""
        try:
            if policy is AckPolicy.ACK:
                await message.ack()
            elif policy is AckPolicy.REQUEUE:
                if not self._stopping:
                    await asyncio.sleep(self._requeue_delay)
                await message.nack(requeue=True)
            else:
                await self._dead_letter(message, reason or "unknown")
        except Exception as exc:
            # The channel went away: the broker redelivers the unacked message; nothing is lost.
            log.warning("could not settle a message from %s: %s", self.queue_name, exc)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        log.warning("dead-lettering a message from %s: %s", self.queue_name, reason[:300])
        headers: dict[str, Any] = dict(message.headers or {})
        headers[DeadLetterHeaders.REASON] = reason[:_REASON_LIMIT]
        headers[DeadLetterHeaders.ORIGINAL_EXCHANGE] = message.exchange or ""
        headers[DeadLetterHeaders.ORIGINAL_ROUTING_KEY] = message.routing_key or ""
        headers[DeadLetterHeaders.ORIGINAL_QUEUE] = self.queue_name
        assert self._publisher is not None
        try:
            await self._publisher.publish(
                DEAD,
                message.routing_key or "",
                json_message(
                    message.body,
                    message_id=message.message_id or "",
                    headers=headers,
                    correlation_id=message.correlation_id,
                ),
                mandatory=True,
            )
        except Exception as exc:
            log.warning("could not dead-letter (%s); requeueing instead", exc)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def reply(self, message: AbstractIncomingMessage, body: bytes, *, timeout: float = 5.0) -> None:
        """Answer an RPC on its `reply_to` address; a caller that went away is not an error."""
        if not message.reply_to or self._reply_channel is None:
            return
        try:
            await self._reply_channel.default_exchange.publish(
                json_message(
                    body,
                    message_id=message.message_id or "",
                    persistent=False,
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to,
                # RabbitMQ returns a mandatory message sent to direct reply-to even when it
                # delivers it: a return frame and an error log per reply, for nothing
                mandatory=False,
                timeout=timeout,
            )
        except Exception as exc:
            log.warning("could not reply to %s: %s", message.reply_to, exc)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop taking messages, let in-flight handlers finish for `grace` seconds, then cancel."""
        if self._stopping:
            return
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for channel in (self._channel, self._reply_channel):
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close()
