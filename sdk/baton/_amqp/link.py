"""A `Connection` that comes back by itself: what a long-lived process holds, its one AMQP stack.

In the server everything rides on one `Link`, kept by `baton_server.broker.connection.Broker`:
the topology (declared at start and again on every reconnect, by the link's first callback),
the consumers and their replies, and the outbox's publisher. In the SDK, `AmqpTracker` holds one
(a worker's control queue and its parking in `baton.dead` ride on it too), and the event emitter
another. The first connect fails fast. After that a lost connection is reopened in the
background with capped, jittered backoff, and each user re-opens its channels in the callback
it registered, in the order registered; a callback that raises is logged and stops neither the
others nor the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from .connection import AmqpError, Connection, ConnectionClosed

log = logging.getLogger(__name__)

OnReconnect = Callable[[Connection], Awaitable[None]]


class Link:
    def __init__(self, url: str, *, name: str, max_backoff: float = 5.0) -> None:
        self.url = url
        self.name = name
        self._max_backoff = max_backoff
        self._connection: Connection | None = None
        self._callbacks: list[OnReconnect] = []
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        self.up = asyncio.Event()

    @property
    def connection(self) -> Connection:
        connection = self._connection
        if connection is None or connection.closed.done():
            raise ConnectionClosed(f"{self.name}: not connected to the broker")
        return connection

    def on_reconnect(self, callback: OnReconnect) -> None:
        """Run `callback` with each new connection after the first."""
        self._callbacks.append(callback)

    async def connect(self, *, timeout: float | None = None) -> None:
        """The first connection, within the URL's `timeout` (`timeout` if it has none): fails fast."""
        self._connection = await Connection.open(self.url, name=self.name, timeout=timeout)
        self.up.set()
        self._watcher = asyncio.create_task(self._watch(), name=f"{self.name}-link")

    @property
    def holding_back(self) -> str:
        """Why publishes wait ("" when they do not, or when there is no connection): for
        readiness checks and logs."""
        connection = self._connection
        if connection is None or connection.closed.done():
            return ""
        return connection.holding_back()

    async def _watch(self) -> None:
        """Reopen the connection each time it is lost. Nothing a callback (or anything else)
        raises ends this loop: only `close()` does."""
        while not self._closing:
            try:
                await self._watch_once()
            except asyncio.CancelledError:
                if self._closing:
                    return
                raise
            except Exception:
                log.exception("%s: the link's watcher failed; carrying on", self.name)
                await asyncio.sleep(0.1)  # not a tight loop, should the same error come again

    async def _watch_once(self) -> None:
        connection = self._connection
        assert connection is not None
        # shielded: cancelling this task must not cancel the connection's own future
        reason = await asyncio.shield(connection.closed)
        if self._closing:
            return
        self.up.clear()
        log.warning("%s: lost the broker (%s); reconnecting", self.name, reason)
        self._connection = await self._reconnect()
        self.up.set()
        log.warning("%s: reconnected to the broker", self.name)
        for callback in self._callbacks:
            try:
                await callback(self._connection)
            except Exception:
                log.exception("%s: a reconnect callback failed", self.name)

    async def _reconnect(self) -> Connection:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((AmqpError, OSError, TimeoutError)),
            wait=wait_random_exponential(multiplier=0.2, max=self._max_backoff),
            reraise=True,
        ):
            with attempt:
                return await Connection.open(self.url, name=self.name)
        raise AssertionError("unreachable: tenacity retries without a stop")

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._connection is not None:
            await self._connection.close()
        self.up.clear()
