"""What one server process shares between its services: the pools, the broker, the outbox.

Two PostgreSQL pools: `pool` for the services (tracker, scheduler, outbox) and `api_pool` for
the API's requests, so that no amount of API load can take the connections the tracker and the
scheduler need.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from baton._amqp import Link

from .broker.connection import Broker
from .broker.outbox import Outbox
from .broker.publisher import Publisher
from .db.installation import installation_id
from .db.migrate import upgrade_database
from .db.pool import close_pool, create_pool
from .events.admission import broker_user
from .settings import ServerSettings

log = logging.getLogger(__name__)


@dataclass
class ServerContext:
    settings: ServerSettings
    pool: asyncpg.Pool[Any]  # the services': tracker, scheduler, outbox
    api_pool: asyncpg.Pool[Any]  # the API's requests and key checks
    broker: Broker  # the process's one AMQP stack: the link and the topology kept on it
    link: Link  # the broker's link: the consumers and the outbox ride on it
    publisher: Publisher
    outbox: Outbox
    installation_id: UUID  # of the database; the vhost is stamped with it (one Baton per vhost)

    @classmethod
    async def open(cls, settings: ServerSettings, *, name: str, migrate: bool = True) -> ServerContext:
        if migrate:  # the database must exist: `baton server db upgrade --create` makes one
            await upgrade_database(settings.database_url)
        pool = await create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        try:
            api_pool = await create_pool(
                settings.database_url, min_size=settings.api_db_pool_min, max_size=settings.api_db_pool_max
            )
        except BaseException:
            await pool.close()
            raise
        link = Link(settings.broker_url, name=name)
        try:
            async with pool.acquire() as conn:
                installation = await installation_id(conn)
            broker = Broker(link, pool, installation)
            # the vhost's stamp first: a vhost of another installation is refused before
            # anything is declared or consumed
            await broker.connect()
        except BaseException:
            await link.close()
            await api_pool.close()
            await pool.close()
            raise
        publisher = Publisher(
            link, timeout=settings.publish_timeout_seconds, user_id=broker_user(settings.broker_url)
        )
        outbox = Outbox(
            pool,
            publisher,
            sweep_interval=settings.outbox_sweep_interval_seconds,
            sweep_age=settings.outbox_sweep_age_seconds,
        )
        outbox.start()
        return cls(settings, pool, api_pool, broker, link, publisher, outbox, installation)

    async def close(self) -> None:
        """Close every part, in this order, even when one of them fails (that is logged)."""
        grace = self.settings.shutdown_grace_seconds
        parts: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("the outbox", lambda: self.outbox.stop(grace=grace)),
            ("the broker", self.broker.close),
            # bounded: a connection still held (a request cut off at shutdown) must not hang the exit
            ("the API's database pool", lambda: close_pool(self.api_pool, timeout=grace)),
            ("the database pool", lambda: close_pool(self.pool, timeout=grace)),
        ]
        for what, close in parts:
            try:
                await close()
            except Exception:
                log.exception("closing %s failed; closing the rest", what)
