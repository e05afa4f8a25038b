"""Publishing with confirms, `mandatory` where a message must reach a queue, and a timeout."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

JSON = "application/json"


def json_message(
    body: bytes,
    *,
    message_id: UUID | str,
    persistent: bool = True,
    headers: dict[str, Any] | None = None,
    reply_to: str | None = None,
    correlation_id: str | None = None,
    type_: str | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type=JSON,
        message_id=str(message_id),
        delivery_mode=(
            aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        ),
        headers=headers or {},
        reply_to=reply_to,
        correlation_id=correlation_id,
        type=type_,
    )


class Publisher:
    """Publishes on one confirm-mode channel. Raises on nack, on a returned message, on timeout."""

    def __init__(self, channel: AbstractChannel, *, timeout: float = 5.0) -> None:
        self._channel = channel
        self._timeout = timeout
        self._exchanges: dict[str, AbstractExchange] = {}

    async def _exchange(self, name: str) -> AbstractExchange:
        if name == "":
            return self._channel.default_exchange
        exchange = self._exchanges.get(name)
        if exchange is None:
            exchange = await self._channel.get_exchange(name, ensure=False)
            self._exchanges[name] = exchange
        return exchange

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        message: aio_pika.Message,
        *,
        mandatory: bool = False,
    ) -> None:
        target = await self._exchange(exchange)
        await target.publish(message, routing_key, mandatory=mandatory, timeout=self._timeout)
