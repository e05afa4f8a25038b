"""Global concurrency limits against the live server: flows and scripts run as `python file.py`
processes, the limits made over the HTTP API, and the slots held watched in the database.

Every test makes limits of its own (unique names), so tests sharing the session's server
never take each other's slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ...support.processes import BATON
from ..conftest import LiveServer
from ..sdk.conftest import Finished, run_process, write_flow

HELD = """
    SELECT coalesce(sum(l.slots), 0)::int
    FROM concurrency_limits c
    JOIN concurrency_lease_limits ll ON ll.limit_id = c.id
    JOIN concurrency_leases l ON l.id = ll.lease_id
    WHERE c.name = $1 AND l.expires > clock_timestamp()"""


def limit_name(base: str = "lim") -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"


@dataclass
class Sampler:
    """The slots of a limit held by live leases, read from the database again and again (on a
    connection of its own) while the block runs."""

    database_url: str
    name: str
    samples: list[int] = field(default_factory=list)

    async def _run(self, db: asyncpg.Connection[Any]) -> None:
        while True:
            self.samples.append(await db.fetchval(HELD, self.name))
            await asyncio.sleep(0.005)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sampler]:
        db = await asyncpg.connect(self.database_url)
        task = asyncio.create_task(self._run(db))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await db.close()


@dataclass
class Limits:
    """One test's view of the live server: its API, database and client environment."""

    http: httpx.AsyncClient
    db: asyncpg.Connection[Any]
    database_url: str
    env: dict[str, str]
    workdir: Path

    async def create(self, limit: int, name: str | None = None, **fields: Any) -> str:
        name = name or limit_name()
        response = await self.http.post("/concurrency_limits", json={"name": name, "limit": limit, **fields})
        assert response.status_code == 201, response.text
        return name

    async def read(self, name: str) -> dict[str, Any]:
        response = await self.http.get(f"/concurrency_limits/{name}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def held(self, name: str) -> int:
        return int(await self.db.fetchval(HELD, name))

    def sample(self, name: str) -> contextlib.AbstractAsyncContextManager[Sampler]:
        return Sampler(self.database_url, name).running()

    def write(self, source: str, filename: str, **names: str) -> Path:
        return write_flow(self.workdir, source, filename, **names)

    async def python(
        self, path: Path, *args: str, timeout: float = 90.0, env: dict[str, str] | None = None
    ) -> Finished:
        return await run_process([sys.executable, str(path), *args], env or self.env, self.workdir, timeout)

    async def start(self, path: Path, *args: str) -> asyncio.subprocess.Process:
        """A script left running (its output piped)."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(path),
            *args,
            env=self.env,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def baton(self, *args: str) -> Finished:
        return await run_process([BATON, *args], self.env, self.workdir)


def intervals(path: Path) -> list[tuple[float, float]]:
    """The (start, end) times the holders wrote, one JSON object a line."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [(item["start"], item["end"]) for item in map(json.loads, lines)]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans that overlap at any instant (an end and a start at the same time do not)."""
    edges = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.fixture
async def limits(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[Limits]:
    env = live_server.client_env(BATON_HOME=str(tmp_path / "home"), COLUMNS="200")
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    db = await asyncpg.connect(live_server.backends.database_url)
    try:
        async with httpx.AsyncClient(base_url=live_server.api_url, headers=headers, timeout=10) as http:
            yield Limits(http, db, live_server.backends.database_url, env, tmp_path)
    finally:
        await db.close()
