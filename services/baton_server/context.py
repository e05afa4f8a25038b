"""What one server process shares between its services: the pool, the broker, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from baton._amqp import Link

from .broker.connection import Broker
from .broker.outbox import Outbox
from .broker.publisher import Publisher
from .db.migrate import ensure_database, upgrade_database
from .db.pool import create_pool
from .events.admission import broker_user
from .settings import ServerSettings


@dataclass
class ServerContext:
    settings: ServerSettings
    pool: asyncpg.Pool[Any]
    broker: Broker  # aio-pika: topology, pool queues, health
    link: Link  # Baton's lean client: the tracker's consumers and the outbox
    publisher: Publisher
    outbox: Outbox

    @classmethod
    async def open(cls, settings: ServerSettings, *, name: str, migrate: bool = True) -> ServerContext:
        if migrate:
            await ensure_database(settings.database_url)
            await upgrade_database(settings.database_url)
        pool = await create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        broker = Broker(settings.broker_url, name=name)
        link = Link(settings.broker_url, name=name)
        try:
            await broker.connect()
            await link.connect()
        except BaseException:
            await broker.close()
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
        return cls(settings, pool, broker, link, publisher, outbox)

    async def close(self) -> None:
        await self.outbox.stop(grace=self.settings.shutdown_grace_seconds)
        await self.link.close()
        await self.broker.close()
        await self.pool.close()
