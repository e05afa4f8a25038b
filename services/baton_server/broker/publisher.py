"""Publishing with confirms, `mandatory` where a message must reach a queue, and a timeout."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from baton._amqp import PERSISTENT, TRANSIENT, AmqpError, Channel, Connection, Link, Properties

JSON = "application/json"


def json_properties(
    *,
    message_id: UUID | str,
    persistent: bool = True,
    headers: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    type_: str | None = None,
) -> Properties:
    return Properties(
        content_type=JSON,
        message_id=str(message_id),
        delivery_mode=PERSISTENT if persistent else TRANSIENT,
        headers=headers or {},
        correlation_id=correlation_id,
        type=type_,
    )


class PublishTimeout(AmqpError):
    """The broker did not confirm in time; the message may or may not have been taken."""


class Publisher:
    """Publishes on one confirm-mode channel of the link, re-opened when the broker closed it
    (an unknown exchange) or the connection came back. Raises `Returned` for an unroutable
    mandatory message, `Nacked`, `PublishTimeout`, or `ConnectionClosed` while the broker is away."""

    def __init__(self, link: Link, *, timeout: float = 5.0, user_id: str | None = None) -> None:
        self._link = link
        self._timeout = timeout
        # set on every message: RabbitMQ checks it is the connection's user, so a consumer can
        # tell Baton's own messages (its `baton.` events) from anyone else's
        self._user_id = user_id
        self._channel: Channel | None = None
        self._opening = asyncio.Lock()
        link.on_reconnect(self._reopen)

    async def _reopen(self, connection: Connection) -> None:
        async with self._opening:
            self._channel = await connection.channel(confirms=True)

    async def _ready(self) -> Channel:
        channel = self._channel
        if channel is not None and channel.is_open:
            # a full socket or a blocked broker: wait (at once when neither), do not pile up
            await channel.writable()
            return channel
        async with self._opening:
            if self._channel is None or not self._channel.is_open:
                self._channel = await self._link.connection.channel(confirms=True)
            return self._channel

    async def send(
        self, exchange: str, routing_key: str, body: bytes, properties: Properties, *, mandatory: bool = False
    ) -> asyncio.Future[None]:
        """Write the message now; return its confirm, which fails as `publish` would raise.
        Frames go out in call order."""
        if self._user_id is not None and properties.user_id is None:
            properties.user_id = self._user_id
        try:
            channel = self._channel
            if channel is None or not channel.writable_now():  # else no coroutine: the hot path
                channel = await self._ready()
            confirm = channel.publish(exchange, routing_key, body, properties, mandatory=mandatory)
        except AmqpError as exc:
            confirm = asyncio.get_running_loop().create_future()
            confirm.set_exception(exc)
        assert confirm is not None  # a confirm-mode channel
        return confirm

    async def settle(self, confirms: list[asyncio.Future[None]]) -> list[BaseException | None]:
        """Wait for confirms together (one timeout for all); each one's error or None."""
        if confirms:
            _, late = await asyncio.wait(confirms, timeout=self._timeout)
            for confirm in late:
                confirm.set_exception(PublishTimeout(f"no confirm from the broker in {self._timeout:g}s"))
        return [confirm.exception() for confirm in confirms]

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Properties, *, mandatory: bool = False
    ) -> None:
        confirm = await self.send(exchange, routing_key, body, properties, mandatory=mandatory)
        (error,) = await self.settle([confirm])
        if error is not None:
            raise error
