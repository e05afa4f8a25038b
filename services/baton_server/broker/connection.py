"""One robust connection per process, with the topology re-declared after every reconnect."""

from __future__ import annotations

import logging
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from baton._transport._connect import connect_robust

from .topology import declare_topology

log = logging.getLogger(__name__)


class Broker:
    """Owns the connection and a publishing channel (publisher confirms, returns raised)."""

    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("broker is not connected")
        return self._connection

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("broker is not connected")
        return self._channel

    async def connect(self, *, timeout: float = 10.0) -> None:
        # raises on the first failure: a wrong URL fails fast at start
        self._connection = await connect_robust(self.url, name=self.name, timeout=timeout)
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_topology(self._channel)
        self._connection.reconnect_callbacks.add(self._on_reconnect)

    async def _on_reconnect(self, *_: Any) -> None:
        log.warning("reconnected to RabbitMQ; re-declaring the topology")
        try:
            await declare_topology(self.channel)
        except Exception:  # the channel may still be restoring; consumers' watchdogs retry
            log.exception("re-declaring the topology after a reconnect failed")

    async def new_channel(self, *, prefetch: int = 0) -> AbstractChannel:
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def is_healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
