"""Acks in delivery order, many at once: one `basic.ack` with `multiple` per run of settled
deliveries instead of one per message.

A multiple ack settles every unacknowledged delivery of the channel up to its tag, so it may
only be sent once every earlier delivery is settled too. Deliveries are stored out of order
(two statements run at once) and a few are settled alone (dead-lettered or requeued, each with
its own ack or nack), so the window keeps the channel's deliveries in the order they came:
when the oldest ones are all settled, it acks the newest of them that still wants an ack, with
`multiple`, which covers the others. (The ones settled alone are no longer unacknowledged, so
covering them does nothing; the tag acked is always one still unacknowledged, as RabbitMQ
requires.)

A new channel (after a reconnect) starts a new window; a delivery of an old channel is acked
alone, and if that channel is gone the broker delivers the message again, which storing
(idempotent on the event's id) absorbs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

from baton._amqp import AmqpError, Channel, Delivery, Link

from ..broker.consumer import AckPolicy, Consumer
from ..broker.publisher import Publisher

log = logging.getLogger(__name__)


class AckWindow:
    def __init__(self) -> None:
        self._channel: Channel | None = None
        self._order: deque[int] = deque()  # delivery tags not yet acked, in delivery order
        self._settled: set[int] = set()
        self._to_ack: set[int] = set()
        self.acks_sent = 0

    def received(self, message: Delivery) -> None:
        if message.channel is not self._channel:
            self._channel = message.channel
            self._order.clear()
            self._settled.clear()
            self._to_ack.clear()
        self._order.append(message.delivery_tag)

    def settled(self, messages: Iterable[Delivery], *, ack: bool) -> None:
        """`ack`: these are done and want an ack; otherwise each was settled on its own."""
        channel = self._channel
        settled, to_ack = self._settled, self._to_ack
        for message in messages:
            if message.channel is not channel:
                if ack:
                    self._ack_alone(message)
                continue
            settled.add(message.delivery_tag)
            if ack:
                to_ack.add(message.delivery_tag)
        order = self._order
        last = None
        while order and order[0] in settled:
            tag = order.popleft()
            settled.discard(tag)
            if tag in to_ack:
                to_ack.discard(tag)
                last = tag
        if last is not None and channel is not None:
            try:
                channel.ack(last, multiple=True)
                self.acks_sent += 1
            except AmqpError as exc:
                log.warning("could not ack stored events (%s); the broker delivers them again", exc)

    def _ack_alone(self, message: Delivery) -> None:
        try:
            message.ack()
        except AmqpError as exc:
            log.warning("could not ack a stored event (%s); the broker delivers it again", exc)


class WindowedConsumer(Consumer):
    """A consumer whose deliveries are settled through an AckWindow by a pipeline of its own
    (the event store's writer, the router's applier): most are acked together once applied; one
    that is refused or must come again is settled alone, and then frees its place in the window."""

    def __init__(self, link: Link, publisher: Publisher, *, prefetch: int) -> None:
        super().__init__(link, publisher, prefetch=prefetch)
        self._acks = AckWindow()

    def _settle_alone(self, message: Delivery, policy: AckPolicy, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._settle_then_release(message, policy, reason))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _settle_then_release(self, message: Delivery, policy: AckPolicy, reason: str) -> None:
        try:
            await self._settle(message, policy, reason)
        finally:
            self._acks.settled((message,), ack=False)

    async def _close_pipeline(self, timeout: float) -> None:
        """Apply what was received, within `timeout` seconds."""
        raise NotImplementedError

    async def _finish_inflight(self, grace: float) -> None:
        """Apply (and ack) what was received, for `grace` seconds; then what is left is
        redelivered when the channel closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self._close_pipeline(grace)
        await super()._finish_inflight(max(0.0, deadline - loop.time()))
