"""Chaos tests break their backends on purpose, so they get private ones (`support.private`):
a RabbitMQ node of their own, shared by this package's tests, and a ServerContext and tracker on
it. They get a database of their own too: a context on the run's database would sweep other
tests' outbox rows to the private broker (one Baton per database and vhost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from baton_server.context import ServerContext
from baton_server.settings import ServerSettings
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ, private_rabbitmq


@pytest.fixture(scope="package")
def private_mq() -> Iterator[PrivateRabbitMQ]:
    with private_rabbitmq() as mq:
        mq.add_vhost("baton-chaos")
        yield mq


async def _recreate(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="package")
def chaos_backends(backends: Backends, private_mq: PrivateRabbitMQ) -> Iterator[Backends]:
    """A database of their own (beside the run's) and the private broker."""
    server, _, database = backends.database_url.rpartition("/")
    name = f"{database}_chaos"
    asyncio.run(_recreate(f"{server}/postgres", name))
    try:
        yield Backends(f"{server}/{name}", private_mq.url("baton-chaos"), "baton-chaos", None)
    finally:
        asyncio.run(_recreate(f"{server}/postgres", name, drop_only=True))


@pytest.fixture(scope="package")
def chaos_settings(server_settings: ServerSettings, chaos_backends: Backends) -> ServerSettings:
    return server_settings.model_copy(
        update={"broker_url": chaos_backends.broker_url, "database_url": chaos_backends.database_url}
    )


@pytest.fixture(scope="package")
async def chaos_ctx(chaos_settings: ServerSettings) -> AsyncIterator[ServerContext]:
    context = await ServerContext.open(chaos_settings, name="baton-chaos-tests")
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture(scope="package")
async def chaos_tracker(chaos_ctx: ServerContext) -> AsyncIterator[TrackerService]:
    service = TrackerService(chaos_ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
