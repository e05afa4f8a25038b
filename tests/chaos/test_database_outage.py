"""PostgreSQL stops under a running `baton server start` (a private cluster, never the
machine's): the API answers 503 with Retry-After, never 500, and serves again once the database
is back."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..support.backends import Backends, separate_backends
from ..support.private import PrivatePostgres, private_postgres
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos


@pytest.fixture
def outage_backends(backends: Backends) -> Iterator[tuple[Backends, PrivatePostgres]]:
    """A vhost of its own on the machine's RabbitMQ and a private PostgreSQL cluster."""
    with separate_backends(backends, "outage") as separate, private_postgres() as pg:
        yield dataclasses.replace(separate, database_url=pg.url("baton")), pg


def _cli(backends: Backends, *args: str) -> str:
    return subprocess.run(
        [BATON, *args], env=baton_env(backends), capture_output=True, text=True, check=True
    ).stdout.strip()


async def test_api_answers_503_during_a_database_outage(
    outage_backends: tuple[Backends, PrivatePostgres], tmp_path: Path
) -> None:
    backends, pg = outage_backends
    await asyncio.to_thread(_cli, backends, "server", "db", "upgrade", "--create")
    key = await asyncio.to_thread(_cli, backends, "api-key", "create", "--name", "outage", "--scope", "admin")
    with server_process(backends, tmp_path) as server:
        ready_url = server.api_url.removesuffix("/api") + "/ready"
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.api_url, headers=headers, timeout=30) as api:
            assert (await api.get("/flow_runs")).status_code == 200
            await asyncio.to_thread(pg.stop)

            async def one(i: int) -> httpx.Response:
                if i % 2:
                    return await api.post("/flow_runs", json={"flow_name": "during the outage"})
                return await api.get("/flow_runs")

            try:
                answers = await asyncio.gather(*(one(i) for i in range(40)))
            except httpx.ConnectError as exc:  # the server went away: say how (seen once in CI)
                status = server.process.poll()
                raise AssertionError(
                    f"the API refused connections (exit {status}):\n{server.log()[-4000:]}"
                ) from exc
            assert Counter(a.status_code for a in answers) == Counter({503: 40}), [
                (a.status_code, a.text) for a in answers if a.status_code != 503
            ]
            assert all(a.headers.get("retry-after") for a in answers)
            assert {a.json()["detail"] for a in answers} <= {
                "the database is unavailable; retry later",
                "API keys cannot be checked now (the database is unavailable); retry later",
            }
            ready = await api.get(ready_url)
            assert ready.status_code == 503 and ready.json()["postgres"].startswith("unavailable")

            await asyncio.to_thread(pg.start)

            async def served() -> bool:
                return (await api.get("/flow_runs")).status_code == 200

            await eventually(served, timeout=30, what="the API serving again once PostgreSQL is back")
            assert (await api.post("/flow_runs", json={"flow_name": "after"})).status_code == 201
            assert (await api.get(ready_url)).status_code == 200
        log = server.log()
        assert "Exception in ASGI application" not in log and " 500" not in log, log[-3000:]
