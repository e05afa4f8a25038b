"""How a worker takes runs from its pool's queues: never more than it has free slots for,
the highest-priority queue first.

`SlotBook` is the arithmetic (pure, unit-tested): slots are taken by runs `running`, by
deliveries being claimed (`claiming`) and by deliveries waiting for a slot (`waiting`, served
by queue priority, then arrival).

`Intake` drives RabbitMQ with it. Pool queues are quorum queues, whose prefetch is set per
consumer when it starts, so a consumer is (re)started whenever its remaining allowance would
exceed the free slots: before a delivery of an active consumer is settled (settling lets the
broker send another) and when slots free up. With no free slot nothing consumes; when slots
free up after that, the queues are read with basic.get in priority order until they are empty
(so a backlog is served highest priority first), then consumers start again (so an idle worker
hears of new runs at once, without polling). With several queues each consumer may receive up
to the free slots: the surplus waits locally, by priority, and is bounded by the number of
queues. An unlimited worker just consumes everything with a fixed prefetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .._amqp import AmqpError, Channel, Delivery

logger = logging.getLogger("baton.worker")

UNLIMITED_PREFETCH = 32


@dataclass(frozen=True, slots=True, order=True)
class QueueSpec:
    """A work queue as the worker serves it; lower priority numbers are served first."""

    priority: int
    name: str


@dataclass
class SlotBook:
    limit: int | None
    running: int = 0
    claiming: int = 0
    _waiting: list[tuple[int, int, Any]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def free(self) -> int | None:
        """Slots no run or delivery holds (None: unlimited). Negative if over-delivered."""
        if self.limit is None:
            return None
        return self.limit - self.running - self.claiming - len(self._waiting)

    def can_claim(self) -> bool:
        return self.limit is None or self.running + self.claiming < self.limit

    def offer(self, item: Any, priority: int) -> bool:
        """A delivery arrived: True if it may be claimed now, else it waits for a slot."""
        if self.can_claim():
            self.claiming += 1
            return True
        heapq.heappush(self._waiting, (priority, next(self._seq), item))
        return False

    def next_waiting(self) -> Any | None:
        """The highest-priority waiting delivery, if a slot is free for it (it is then claiming)."""
        if self._waiting and self.can_claim():
            self.claiming += 1
            return heapq.heappop(self._waiting)[2]
        return None

    def drain_waiting(self) -> list[Any]:
        items = [item for _, _, item in sorted(self._waiting)]
        self._waiting.clear()
        return items

    def claimed(self, started: bool) -> None:
        self.claiming -= 1
        if started:
            self.running += 1

    def finished(self) -> None:
        self.running -= 1


@dataclass(eq=False)
class _Consumer:
    spec: QueueSpec
    tag: str | None = None
    prefetch: int = 0
    unacked: int = 0  # deliveries of this consumer not settled yet
    starting: bool = False  # consume written: deliveries may come before its tag is known here

    @property
    def allowance(self) -> int:
        """How many more the broker may send this consumer."""
        return self.prefetch - self.unacked if self.tag else 0


Deliver = Callable[[Delivery, QueueSpec], None]
OpenChannel = Callable[[], Awaitable[Channel]]


class Intake:
    """Consumes on one channel of the worker's connection (`open_channel` gives a new one: at
    start, after the broker closed the last, and after a reconnect)."""

    def __init__(self, open_channel: OpenChannel, book: SlotBook, deliver: Deliver) -> None:
        self._open_channel = open_channel
        self.channel: Channel | None = None
        self.book = book
        self._deliver = deliver
        self._consumers: dict[str, _Consumer] = {}
        self._by_tag: dict[str, _Consumer] = {}
        self._lock = asyncio.Lock()
        self._backlog = True  # unknown at start: read the queues by priority first
        self.stopped = False

    @property
    def specs(self) -> list[QueueSpec]:
        return sorted(c.spec for c in self._consumers.values())

    async def _channel(self) -> Channel:
        """The intake's channel, opened again if it is gone; its consumers went with it."""
        channel = self.channel
        if channel is not None and channel.is_open:
            return channel
        for consumer in self._consumers.values():
            consumer.tag, consumer.starting = None, False
        self._by_tag.clear()
        self._backlog = True
        self.channel = channel = await self._open_channel()
        return channel

    async def set_queues(self, specs: list[QueueSpec]) -> None:
        """Serve exactly these queues (new ones are checked passively: they must exist)."""
        async with self._lock:
            wanted = {spec.name: spec for spec in specs}
            for name in list(self._consumers):
                if name not in wanted:
                    await self._cancel(self._consumers.pop(name))
            for name, spec in wanted.items():
                current = self._consumers.get(name)
                if current is not None:
                    current.spec = spec
                    continue
                # on a channel of its own: a missing queue closes the channel it is asked on
                checking = await self._open_channel()
                try:
                    await checking.declare_queue(name, passive=True)
                finally:
                    await checking.close()
                self._consumers[name] = _Consumer(spec)
                self._backlog = True
        await self.reconcile()

    # --- deliveries ---------------------------------------------------------------------------

    def _on_push(self, consumer: _Consumer) -> Callable[[Delivery], None]:
        def on_message(message: Delivery) -> None:
            current = self._by_tag.get(message.consumer_tag)
            if current is None and consumer.starting:  # read together with its consume-ok
                current = consumer
            if current is not None:
                current.unacked += 1
            self._deliver(message, consumer.spec)

        return on_message

    def _on_cancelled(self, tag: str) -> None:
        """A consumer ended without our cancel: the broker cancelled it (its queue was deleted)
        or its channel closed. The next reconcile decides what consumes."""
        consumer = self._by_tag.pop(tag, None)
        if consumer is not None and consumer.tag == tag:
            consumer.tag = None
            if self.channel is not None and self.channel.is_open:
                logger.warning("The broker cancelled the consumer of %s", consumer.spec.name)

    async def settle(self, message: Delivery, *, requeue: bool | None = None) -> None:
        """Ack (requeue None), or nack with/without requeue; first shrink the consumer it came
        from so the slot its settlement frees at the broker is not more than we have."""
        async with self._lock:
            consumer = self._by_tag.get(message.consumer_tag) if message.consumer_tag else None
            try:
                if consumer is not None and consumer.tag == message.consumer_tag:
                    consumer.unacked -= 1
                    free = self.book.free()
                    if free is not None and consumer.allowance > max(free, 0):
                        await self._restart(consumer, free)
                if requeue is None:
                    message.ack()
                else:
                    message.nack(requeue=requeue)
            except AmqpError as exc:  # channel lost: the broker redelivers it; the claim decides
                logger.debug("Could not settle a delivery: %r", exc)

    # --- keeping consumption in line with free slots --------------------------------------------

    async def reconcile(self) -> None:
        async with self._lock:
            try:
                await self._reconcile()
            except AmqpError as exc:
                # the connection is away (its reconnect recovers), or the broker closed the
                # channel (a queue deleted meanwhile): the next reconcile opens another
                logger.warning("Could not adjust consumption to the free slots: %s", exc)

    async def _reconcile(self) -> None:
        if not self.stopped:
            await self._channel()
        if self.stopped:
            for consumer in self._consumers.values():
                await self._cancel(consumer)
            return
        free = self.book.free()
        if free is None:
            for consumer in self._consumers.values():
                if consumer.tag is None:
                    await self._start(consumer, UNLIMITED_PREFETCH)
            return
        if free <= 0:
            for consumer in self._consumers.values():
                await self._cancel(consumer)
            self._backlog = True
            return
        if self._backlog:
            for consumer in self._consumers.values():
                await self._cancel(consumer)
            free = await self._pull(free)
            if free <= 0:
                return
            self._backlog = False
        for consumer in self._consumers.values():
            if consumer.tag is None or consumer.allowance < free:
                await self._restart(consumer, free)

    async def _pull(self, free: int) -> int:
        """basic.get by priority while slots are free; returns the free slots left."""
        channel = await self._channel()
        while free > 0 and not self.stopped:
            for consumer in sorted(self._consumers.values(), key=lambda c: c.spec):
                message = await channel.get(consumer.spec.name)
                if message is not None:
                    self._deliver(message, consumer.spec)
                    break
            else:
                return free  # every queue is empty
            free = self.book.free() or 0
        return free

    async def _restart(self, consumer: _Consumer, prefetch: int) -> None:
        await self._cancel(consumer)
        if prefetch > 0 and not self.stopped:
            await self._start(consumer, prefetch)

    async def _start(self, consumer: _Consumer, prefetch: int) -> None:
        channel = await self._channel()
        await channel.qos(prefetch)  # per consumer, for the consumers started after it
        consumer.prefetch, consumer.unacked, consumer.starting = prefetch, 0, True
        try:
            tag = await channel.consume(
                consumer.spec.name, self._on_push(consumer), on_cancel=self._on_cancelled
            )
        finally:
            consumer.starting = False
        consumer.tag = tag
        self._by_tag[tag] = consumer

    async def _cancel(self, consumer: _Consumer) -> None:
        if consumer.tag is None:
            return
        tag, consumer.tag = consumer.tag, None
        channel = self.channel
        if channel is not None and channel.is_open:
            with contextlib.suppress(AmqpError):
                await channel.cancel(tag)
        # deliveries it made stay unsettled: they count against no consumer now
        self._by_tag.pop(tag, None)

    async def recover(self) -> None:
        """After a reconnect: the broker took back what was unsettled, and the channel went with
        its consumers; start again on a new one from the free slots (queues by priority)."""
        async with self._lock:
            for consumer in self._consumers.values():
                await self._cancel(consumer)
            dropped = self.book.drain_waiting()  # requeued by the broker: they come again
            if dropped:
                logger.info("Dropped %d deliveries of the lost connection", len(dropped))
            self._backlog = True
            await self._reconcile()

    async def stop(self) -> None:
        self.stopped = True
        async with self._lock:
            for consumer in self._consumers.values():
                await self._cancel(consumer)
