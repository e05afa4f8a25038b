"""One Baton per vhost, enforced: two installations (two databases) on one vhost.

The first server stamps the vhost with its database's installation id; a second server with a
database of its own refuses to start, saying so in one line, and the first one keeps working.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from ..support.backends import Backends, separate_backends
from ..support.processes import BATON, baton_env, free_port, server_process
from .conftest import LiveServer


@pytest.fixture
def two_installations(backends: Backends) -> Iterator[tuple[Backends, Backends]]:
    """A vhost and database of their own, and a second database beside it on that vhost."""
    with separate_backends(backends, "one") as first:
        server, _, name = first.database_url.rpartition("/")
        second = dataclasses.replace(first, database_url=f"{server}/{name}_second")
        try:
            yield first, second
        finally:
            asyncio.run(_drop(f"{server}/postgres", f"{name}_second"))


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _installation(database_url: str) -> uuid.UUID:
    conn = await asyncpg.connect(database_url)
    try:
        value: uuid.UUID = await conn.fetchval("SELECT id FROM installation")
        return value
    finally:
        await conn.close()


def _baton(backends: Backends, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATON, *args], env=baton_env(backends, **env), capture_output=True, text=True, timeout=60
    )


def test_a_second_installation_on_a_vhost_refuses_to_start(
    two_installations: tuple[Backends, Backends], tmp_path: Path
) -> None:
    first, second = two_installations
    made = _baton(second, "server", "db", "upgrade", "--create")
    assert made.returncode == 0, made.stderr
    with server_process(first, tmp_path) as server:
        ours = asyncio.run(_installation(first.database_url))
        theirs = asyncio.run(_installation(second.database_url))
        assert ours != theirs  # each database is an installation of its own
        refused = _baton(second, "server", "start", BATON_API_PORT=str(free_port()))
        assert refused.returncode == 1
        lines = [line for line in refused.stderr.splitlines() if "could not start" in line]
        assert len(lines) == 1, refused.stderr
        assert f"belongs to Baton installation {ours}" in lines[0], refused.stderr
        assert f"installation {theirs}" in lines[0]
        assert "Traceback" not in refused.stderr
        # the vhost's own installation is untouched
        assert httpx.get(server.api_url.removesuffix("/api") + "/ready").status_code == 200

    # and the first one starts again on it
    with server_process(first, tmp_path) as server:
        assert httpx.get(server.api_url.removesuffix("/api") + "/ready").status_code == 200


def test_a_worker_whose_broker_belongs_to_another_installation_refuses_to_start(
    live_server: LiveServer, two_installations: tuple[Backends, Backends], tmp_path: Path
) -> None:
    """The worker's API is one installation; its BATON_BROKER_URL points at a vhost that another
    installation's server stamped."""
    other, _ = two_installations
    with server_process(other, tmp_path):
        theirs = asyncio.run(_installation(other.database_url))
    ours = asyncio.run(_installation(live_server.backends.database_url))
    env = live_server.client_env(BATON_BROKER_URL=other.broker_url)
    refused = subprocess.run(
        [BATON, "worker", "start", "--pool", f"pool-{uuid.uuid4().hex[:8]}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert f"belongs to Baton installation {theirs}" in errors[0]
    assert f"the API at {live_server.api_url} is installation {ours}" in errors[0]
