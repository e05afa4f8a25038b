"""Parking a delivery the worker cannot use in `baton.dead`, with the reason in a header."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD, pool_queue_name

from .._amqp import PERSISTENT, AmqpError, Channel, Delivery, Properties
from .._transport.amqp import AmqpTracker

logger = logging.getLogger("baton.worker")

DEAD_REASON_LIMIT = 2000


class Parking:
    """Publishes to baton.dead on a confirm channel of the tracker's connection, opened when
    first needed and again after the broker closed it (a refusal, a reconnect)."""

    def __init__(self, pool: str, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._channel: Channel | None = None

    def forget_channel(self) -> None:
        """The connection was replaced: the next park opens a channel on the new one."""
        self._channel = None

    async def park(self, tracker: AmqpTracker, message: Delivery, reason: str) -> bool:
        """Publish `message` as it came, with `reason` in a header, confirmed; the caller then
        acks it. False if it could not be published (the caller rejects it instead)."""
        routing_key = message.routing_key or ""
        queue = routing_key.removeprefix(f"{self._pool}.")
        headers: dict[str, Any] = {
            **(message.headers or {}),
            DeadLetterHeaders.REASON: reason[:DEAD_REASON_LIMIT],
            DeadLetterHeaders.ORIGINAL_EXCHANGE: message.exchange or "",
            DeadLetterHeaders.ORIGINAL_ROUTING_KEY: routing_key,
            DeadLetterHeaders.ORIGINAL_QUEUE: pool_queue_name(self._pool, queue),
        }
        properties = Properties(
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            delivery_mode=PERSISTENT,
        )
        try:
            async with asyncio.timeout(self._timeout):
                channel = self._channel
                if channel is None or not channel.is_open:  # the broker closes it on a refusal
                    channel = self._channel = await tracker.link.connection.channel(confirms=True)
                await channel.writable()
                confirmed = channel.publish(DEAD, routing_key, message.body, properties, mandatory=True)
                assert confirmed is not None  # a confirm-mode channel
                await confirmed
        except (AmqpError, TimeoutError) as exc:
            logger.warning("Could not park the message in baton.dead (%r): rejecting it", exc)
            return False
        return True
