"""Fixtures shared by every suite: the backends, server settings and an in-process server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from baton_server.api.app import create_app
from baton_server.api.auth import LEGACY_WRITE, Scope, create_api_key
from baton_server.context import ServerContext
from baton_server.db.types import Connection
from baton_server.scheduler.service import SchedulerService
from baton_server.settings import ServerSettings
from baton_server.tracker.service import TrackerService

from .support.backends import Backends, test_backends


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    # Nothing is put in os.environ: SDK tests in the same run must not start reporting to it.
    with test_backends() as found:
        yield found


@pytest.fixture(scope="session")
def server_settings(backends: Backends) -> ServerSettings:
    return ServerSettings(
        database_url=backends.database_url,
        broker_url=backends.broker_url,
        reaper_interval_seconds=0.2,
        outbox_sweep_interval_seconds=0.2,
        outbox_sweep_age_seconds=0.5,
        shutdown_grace_seconds=2.0,
    )


@pytest.fixture(scope="session")
async def ctx(server_settings: ServerSettings) -> AsyncIterator[ServerContext]:
    context = await ServerContext.open(server_settings, name="baton-tests")
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def conn(ctx: ServerContext) -> AsyncIterator[Connection]:
    async with ctx.pool.acquire() as connection:
        yield connection


@pytest.fixture(scope="session")
async def tracker(ctx: ServerContext) -> AsyncIterator[TrackerService]:
    """The tracker service (consumer and reaper) running in the test process."""
    service = TrackerService(ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture(scope="session")
async def api_keys(ctx: ServerContext) -> dict[str, str]:
    """One key per scope, by its name ("read", "events", "run", "worker", "deploy", "admin"),
    and "write": a key with what the old write scope could do (read, events, run, worker,
    deploy), as keys of that scope were migrated."""
    keys = {}
    async with ctx.pool.acquire() as connection:
        for scope in Scope:
            _, keys[scope.value] = await create_api_key(
                connection, name=f"tests-{scope.value}", scopes={scope}
            )
        _, keys["write"] = await create_api_key(connection, name="tests-write", scopes=LEGACY_WRITE)
    return keys


@pytest.fixture
async def api(
    ctx: ServerContext, server_settings: ServerSettings, api_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API app (in process), authenticated with a write key."""
    app = create_app(server_settings, ctx)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://baton.test",
            headers={"Authorization": f"Bearer {api_keys['write']}"},
        ) as client:
            yield client


@pytest.fixture(scope="session")
async def scheduler(ctx: ServerContext) -> AsyncIterator[SchedulerService]:
    """The scheduler service (dispatch loop) running in the test process."""
    service = SchedulerService(ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that restart RabbitMQ run last, so a restart cannot disturb any other test."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)
