"""The consumer base: decode, handle, then settle every message in exactly one place.

A handler commits its PostgreSQL transaction before returning, so an ACK always follows a
commit. A message that cannot be decoded or is invalid is dead-lettered to `baton.dead` with the
reason in a header; while the database is away a handler is retried with backoff and the
consumer pauses (`paused_by`: nothing requeued, nothing parked); a handler that fails for any
other reason gets the message redelivered, and the queue's delivery limit dead-letters it if it
keeps failing. One bad message never stops the consumer, and a watchdog re-subscribes if the
broker cancelled us.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from enum import Enum
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from baton._amqp import AmqpError, Channel, Connection, Delivery, Link
from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD

from ..db.outage import database_down
from ..metrics import DEAD_LETTERED
from .publisher import Publisher, json_properties

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
    """Consumes `queue_name` on the process's `Link`; replies go out on the same channel and
    dead letters through the confirmed `Publisher`."""

    queue_name: str

    def __init__(
        self,
        link: Link,
        publisher: Publisher,
        *,
        prefetch: int = 32,
        watchdog_interval: float = 2.0,
        requeue_delay: float = 0.5,
        pause_backoff_max: float = 5.0,
    ) -> None:
        self._pause_backoff_max = pause_backoff_max
        self._link = link
        self._publisher = publisher
        self._prefetch = prefetch
        self._watchdog_interval = watchdog_interval
        self._requeue_delay = requeue_delay
        self._channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()  # the broker cancelled us, or the connection came back
        self._stopping = False
        link.on_reconnect(self._on_reconnect)

    @abc.abstractmethod
    async def handle(self, message: Delivery) -> None:
        """Handle one message; commit before returning. Raise DeadLetter for a hopeless one."""

    async def start(self) -> None:
        await self._subscribe(self._link.connection)
        self._watchdog = asyncio.create_task(self._watch(), name=f"{self.queue_name}-watchdog")

    async def _subscribe(self, connection: Connection) -> None:
        channel = await connection.channel(prefetch=self._prefetch)
        try:
            tag = await channel.consume(self.queue_name, self._on_delivery, on_cancel=self._on_cancel)
        except BaseException:
            await channel.close()
            raise
        self._channel, self._consumer_tag = channel, tag
        log.info("consuming %s", self.queue_name)

    def _is_subscribed(self) -> bool:
        channel, tag = self._channel, self._consumer_tag
        return channel is not None and tag is not None and channel.has_consumer(tag)

    def _on_cancel(self, _tag: str) -> None:
        if not self._stopping:
            self._lost.set()

    async def _on_reconnect(self, _connection: Connection) -> None:
        self._lost.set()

    async def _watch(self) -> None:
        """The broker may cancel a consumer (queue deleted, node restarted) or the connection may
        come back: notice and subscribe again, retrying until it works."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._watchdog_interval)
            self._lost.clear()
            if self._stopping or self._is_subscribed():
                continue
            log.warning("consumer on %s is gone; subscribing again", self.queue_name)
            try:
                if self._channel is not None:
                    with contextlib.suppress(AmqpError):
                        await self._channel.close()
                await self._subscribe(self._link.connection)
            except Exception as exc:
                log.warning("re-subscribing to %s failed (%s); will retry", self.queue_name, exc)

    def _on_delivery(self, message: Delivery) -> None:
        task = asyncio.create_task(self._process(message))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def paused_by(self, exc: BaseException) -> bool:
        """True if `exc` says a backend the handler needs is away (the database): the message
        is not at fault, so it is neither requeued (which spends its delivery limit) nor parked.
        The handler is tried again with capped, jittered backoff while the message stays
        unacknowledged; with every prefetched message held, the broker sends no more, so the
        consumer pauses until the backend is back."""
        return database_down(exc)

    async def _handle_when_reachable(self, message: Delivery) -> None:
        try:  # the common case, without the cost of a retry loop per message
            await self.handle(message)
            return
        except Exception as exc:
            if not self.paused_by(exc):
                raise

        def waiting(state: RetryCallState) -> None:
            if state.attempt_number == 1:
                exc = state.outcome.exception() if state.outcome else None
                log.warning("%s: paused, a backend is away (%r); retrying", self.queue_name, exc)

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(self.paused_by),
            wait=wait_random_exponential(multiplier=0.5, max=self._pause_backoff_max),
            before_sleep=waiting,
            reraise=True,
        ):
            with attempt:
                await self.handle(message)
                if attempt.retry_state.attempt_number > 1:
                    log.warning("%s: the backend is back; consuming again", self.queue_name)

    async def _process(self, message: Delivery) -> None:
        try:
            await self._handle_when_reachable(message)
            policy, reason = AckPolicy.ACK, None
        except DeadLetter as dead:
            policy, reason = AckPolicy.DEAD_LETTER, dead.reason
        except asyncio.CancelledError:
            policy, reason = AckPolicy.REQUEUE, "consumer stopping"
        except Exception as exc:
            log.exception("handling a message from %s failed; it will be redelivered", self.queue_name)
            policy, reason = AckPolicy.REQUEUE, repr(exc)
        await self._settle(message, policy, reason)

    async def _settle(self, message: Delivery, policy: AckPolicy, reason: str | None) -> None:
        """The one place that acks."""
        try:
            if policy is AckPolicy.ACK:
                message.ack()
            elif policy is AckPolicy.REQUEUE:
                if not self._stopping:
                    await asyncio.sleep(self._requeue_delay)
                message.nack(requeue=True)
            else:
                await self._dead_letter(message, reason or "unknown")
        except AmqpError as exc:
            # The channel went away: the broker redelivers the unacked message; nothing is lost.
            log.warning("could not settle a message from %s: %s", self.queue_name, exc)

    async def _dead_letter(self, message: Delivery, reason: str) -> None:
        log.warning("dead-lettering a message from %s: %s", self.queue_name, reason[:300])
        headers: dict[str, Any] = dict(message.headers)
        headers[DeadLetterHeaders.REASON] = reason[:_REASON_LIMIT]
        headers[DeadLetterHeaders.ORIGINAL_EXCHANGE] = message.exchange
        headers[DeadLetterHeaders.ORIGINAL_ROUTING_KEY] = message.routing_key
        headers[DeadLetterHeaders.ORIGINAL_QUEUE] = self.queue_name
        try:
            await self._publisher.publish(
                DEAD,
                message.routing_key,
                message.body,
                json_properties(
                    message_id=message.message_id or "",
                    headers=headers,
                    correlation_id=message.correlation_id,
                ),
                mandatory=True,
            )
        except AmqpError as exc:
            log.warning("could not dead-letter (%s); requeueing instead", exc)
            message.nack(requeue=True)
            return
        message.ack()
        DEAD_LETTERED.labels(self.queue_name).inc()

    def reply(self, message: Delivery, body: bytes) -> None:
        """Answer an RPC on its `reply_to` address; a caller that went away is not an error.

        Not `mandatory`: RabbitMQ returns a mandatory message sent to direct reply-to even
        when it delivers it. Not confirmed: nothing is lost if a reply is, the caller retries."""
        if not message.reply_to:
            return
        try:
            message.channel.publish(
                "",
                message.reply_to,
                body,
                json_properties(
                    message_id=message.message_id or "",
                    persistent=False,
                    correlation_id=message.correlation_id,
                ),
            )
        except AmqpError as exc:
            log.warning("could not reply to %s: %s", message.reply_to, exc)

    async def _finish_inflight(self, grace: float) -> None:
        """Let in-flight handlers finish for `grace` seconds, then cancel them."""
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop taking messages, let in-flight handlers finish for `grace` seconds, then cancel."""
        if self._stopping:
            return
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._channel is not None and self._consumer_tag is not None:
            with contextlib.suppress(AmqpError):
                await self._channel.cancel(self._consumer_tag)
        await self._finish_inflight(grace)
        if self._channel is not None:
            with contextlib.suppress(AmqpError):
                await self._channel.close()
