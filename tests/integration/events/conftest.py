"""The events service running in the test process, on the run's database and vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from baton_server.context import ServerContext
from baton_server.events.service import EventsService


@pytest.fixture(scope="session")
async def events_service(ctx: ServerContext) -> AsyncIterator[EventsService]:
    service = EventsService(ctx)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
