"""A pool connection taken when it is first needed, not when a request begins.

The tracker answers most proposals from its run cache, and their writes join a batch whose
leader runs one statement for all of them (`tracker.write_batch`): the followers never touch a
connection. Taking one from asyncpg's pool and giving it back costs about 10 us of CPU (a task,
a timeout and a timer each time), about 3% of a transition, and holds a connection that sits
idle while another writer's statement carries the write.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from .types import Connection


class OnDemand:
    """`async with OnDemand(pool) as lazy:`, then `await lazy.connection()` where one is needed;
    the same connection every time, given back at the end."""

    __slots__ = ("_held", "_pool")

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool
        self._held: PoolConnectionProxy[Any] | None = None

    async def __aenter__(self) -> OnDemand:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._pool.release(held)

    async def connection(self) -> PoolConnectionProxy[Any]:
        if self._held is None:
            self._held = await self._pool.acquire()
        return self._held


async def connection(conn: Connection | OnDemand) -> Connection:
    """A connection to run statements on: `conn` itself, or the one `conn` takes on demand."""
    return await conn.connection() if isinstance(conn, OnDemand) else conn
