"""The process's one AMQP stack: Baton's own client (`baton._amqp`) through a `Link`, which
comes back by itself after a lost connection.

Everything in a server process rides on it: the consumers (a channel each), the outbox's
publisher, and the topology. The topology is declared at start and again after every
reconnect, before the consumers subscribe again (its callback is the link's first): the vhost's
installation stamp, the exchanges and Baton's queues, every work queue's pool queue (read from
the database, so a broker that lost them gets them back), and what a service added
(`declare`, e.g. the router's queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from baton._amqp import Channel, Connection, Link
from baton._transport._installation import stamp_vhost

from .topology import declare_pool_queue, declare_topology

log = logging.getLogger(__name__)

Declaration = Callable[[Channel], Awaitable[None]]

_POOL_QUEUES = (
    "SELECT p.name AS pool, q.name AS queue FROM work_queues q JOIN work_pools p ON p.id = q.pool_id"
)


class Broker:
    """The link, and the topology kept declared on it."""

    def __init__(self, link: Link, pool: asyncpg.Pool[Any], installation_id: UUID) -> None:
        self.link = link
        self._pool = pool
        self.installation_id = installation_id
        self._declarations: list[Declaration] = []
        self._channel: Channel | None = None  # for declarations made while running
        self._lock = asyncio.Lock()
        self._topology_error: str | None = None
        self._retrying: asyncio.Task[None] | None = None

    async def connect(self, *, timeout: float | None = None) -> None:
        """The first connection and the whole topology; raises on any failure (fails fast),
        `OtherInstallation` if the vhost is another Baton's."""
        await self.link.connect(timeout=timeout)
        self.link.on_reconnect(self._on_reconnect)
        await self._declare_all(self.link.connection)

    async def _declare_all(self, connection: Connection) -> None:
        await stamp_vhost(connection, self.installation_id)
        await declare_topology(connection)
        channel = await connection.channel()
        try:
            await self._declare_pool_queues(channel)
            for declaration in self._declarations:
                await declaration(channel)
        finally:
            await channel.close()

    async def _declare_pool_queues(self, channel: Channel) -> None:
        for row in await self._pool.fetch(_POOL_QUEUES):
            await declare_pool_queue(channel, row["pool"], row["queue"])

    async def declare_pool_queues(self) -> None:
        """Every work queue's pool queue, as the database lists them."""
        await self.run(self._declare_pool_queues)

    async def _on_reconnect(self, connection: Connection) -> None:
        log.warning("reconnected to RabbitMQ; declaring the topology and the pool queues again")
        try:
            await self._declare_all(connection)
        except Exception as exc:
            self._failed(exc)
            # PostgreSQL (the pool queues) or the broker may still be coming back: keep trying
            if self._retrying is None or self._retrying.done():
                self._retrying = asyncio.create_task(self._keep_declaring(connection), name="topology")
        else:
            self._topology_error = None

    def _failed(self, exc: BaseException) -> None:
        self._topology_error = f"{type(exc).__name__}: {exc}"
        log.warning("declaring the topology after a reconnect failed: %s", self._topology_error)

    async def _keep_declaring(self, connection: Connection) -> None:
        def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            self._failed(error or RuntimeError("unknown"))

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_random_exponential(multiplier=0.5, max=10.0),
            before_sleep=failed,
        ):
            with attempt:
                if connection.closed.done():
                    return  # the next reconnect declares again
                await self._declare_all(connection)
        self._topology_error = None
        log.info("the topology is declared again")

    async def declare(self, declaration: Declaration) -> None:
        """Run `declaration` now, and again after every reconnect."""
        await self.run(declaration)
        self._declarations.append(declaration)

    async def run(self, operation: Declaration) -> None:
        """Run a declaration or deletion once, on the process's topology channel (opened again
        when the broker closed it, as it does after a refused declaration)."""
        async with self._lock:
            channel = self._channel
            if channel is None or not channel.is_open:
                channel = self._channel = await self.link.connection.channel()
            await operation(channel)

    def status(self) -> str:
        """Whether this process can use the broker now: "ok", or why not (for `/ready`)."""
        if not self.link.up.is_set():
            return "unavailable: not connected (reconnecting)"
        held = self.link.holding_back
        if held:
            return f"blocked: {held}"
        if self._topology_error is not None:
            return f"unavailable: the topology could not be declared again ({self._topology_error})"
        return "ok"

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        await self.link.close()
