"""`baton server start` never creates a database by surprise: a typo in the URL is an error
that says what to do, and `baton server db upgrade --create` makes the database."""

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


@pytest.fixture
def missing(backends: Backends) -> Iterator[Backends]:
    """Backends whose database does not exist (yet); dropped afterwards if a test made it. A
    vhost of their own: the new database is another installation (one Baton per vhost)."""
    server, _, _ = backends.database_url.rpartition("/")
    name = f"baton_missing_{uuid.uuid4().hex[:8]}"
    with separate_backends(backends, "missing") as own:
        yield dataclasses.replace(own, database_url=f"{server}/{name}")

    async def drop() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def _baton(backends: Backends, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATON, *args], env=baton_env(backends, **env), capture_output=True, text=True, timeout=60
    )


async def _exists(backends: Backends) -> bool:
    server, _, name = backends.database_url.rpartition("/")
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def test_a_missing_database_is_refused_with_what_to_do(missing: Backends, tmp_path: Path) -> None:
    name = missing.database_url.rpartition("/")[2]
    started = _baton(missing, "server", "start", BATON_API_PORT=str(free_port()))
    assert started.returncode == 1
    said = " ".join(started.stdout.split() + started.stderr.split())
    assert f"database '{name}' does not exist" in said
    assert "baton server db upgrade --create" in said
    for args in (["server", "db", "upgrade"], ["api-key", "create", "--name", "x", "--scope", "read"]):
        refused = _baton(missing, *args)
        assert refused.returncode == 1 and f"database '{name}' does not exist" in refused.stderr
    assert not asyncio.run(_exists(missing)), "nothing was created by surprise"

    made = _baton(missing, "server", "db", "upgrade", "--create")
    assert made.returncode == 0, made.stderr
    assert "created the database" in made.stderr and "applied:" in made.stderr
    again = _baton(missing, "server", "db", "upgrade", "--create")
    assert again.returncode == 0 and "database is up to date" in again.stderr
    with server_process(missing, tmp_path) as server:
        assert httpx.get(server.api_url.removesuffix("/api") + "/ready").status_code == 200
