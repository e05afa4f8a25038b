"""The asyncpg pool: JSON codecs registered once per connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Baton keeps no session state on pooled connections (no LISTEN, no session advisory locks,
    no SET), so the reset query asyncpg runs on every release would be a wasted round trip."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool[Any]:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool[Any], *, timeout: float) -> None:
    """Close gracefully (wait for connections in use) for at most `timeout`, then terminate."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database connections still in use after %.0f s: closing them", timeout)
        pool.terminate()
