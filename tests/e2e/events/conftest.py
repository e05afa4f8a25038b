"""Events end to end: a live stream client, and HTTP and AMQP publishers of the live server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from ...support.waiting import eventually
from ..conftest import LiveServer

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "") -> T:
    """`eventually`, for a probe that answers None until it has its value."""
    found = await eventually(probe, timeout=timeout, what=what)
    assert found is not None
    return found


@dataclass
class LiveStream:
    """`GET /api/events/stream` read in the background: every event it delivers, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    async def saw(self, name: str, count: int = 1) -> bool:
        return self.names().count(name) >= count


async def _read(
    http: httpx.AsyncClient, params: dict[str, Any], headers: dict[str, str], into: LiveStream
) -> None:
    timeout = httpx.Timeout(10, read=None)
    async with http.stream(
        "GET", "/events/stream", params=params, headers=headers, timeout=timeout
    ) as response:
        response.raise_for_status()
        data: list[str] = []
        event_id = None
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                into.connected.set()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif not line and data:
                into.events.append(orjson.loads("\n".join(data)))
                into.ids.append(event_id or "")
                data, event_id = [], None


@contextlib.asynccontextmanager
async def live_stream(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[LiveStream]:
    stream = LiveStream()
    stream.task = asyncio.create_task(_read(http, params, headers or {}, stream))
    try:
        await eventually(lambda: _connected(stream), what="the stream connected")
        yield stream
    finally:
        stream.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await stream.task


async def _connected(stream: LiveStream) -> bool:
    if stream.task is not None and stream.task.done():
        stream.task.result()  # raises why it failed
    return stream.connected.is_set()


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    async with httpx.AsyncClient(base_url=live_server.api_url, headers=headers, timeout=10) as client:
        yield client


async def stored(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/events", params={"limit": 1000, **params})
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items
