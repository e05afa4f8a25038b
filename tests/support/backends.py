"""Where the tests' PostgreSQL and RabbitMQ come from, and a private database and vhost in them.

With testcontainers installed and a reachable Docker engine, testcontainers starts both;
otherwise the services on 127.0.0.1 are used (scripts/services.sh sees that they are up: 5432
trust auth, 5672 guest/guest), and this run gets a database
and a vhost of its own, dropped at the end, so parallel runs never see each other's data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Backends:
    database_url: str
    broker_url: str
    vhost: str
    # set when the machine's own RabbitMQ is used: tests that cut one of their own connections
    # use it (tests that stop or pause a backend use private instances: `support.private`)
    rabbitmqctl: str | None


def docker_engine_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def local_backends(run_id: str) -> Iterator[Backends]:
    import asyncio

    pg = os.environ.get("BATON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    amqp = os.environ.get("BATON_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")
    database, vhost = f"baton_test_{run_id}", f"baton-test-{run_id}"
    asyncio.run(_create_database(f"{pg}/postgres", database))
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield Backends(f"{pg}/{database}", f"{amqp}/{vhost}", vhost, shutil.which("rabbitmqctl"))
    finally:
        with contextlib.suppress(Exception):
            _rabbitmqctl("delete_vhost", vhost)
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(f"{pg}/postgres", database))


@contextlib.contextmanager
def container_backends() -> Iterator[Backends]:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with (
        PostgresContainer("postgres:16", driver=None) as pg,
        RabbitMqContainer("rabbitmq:3.13") as mq,
    ):
        params = mq.get_connection_params()
        broker = f"amqp://guest:guest@{params.host}:{params.port}/"
        yield Backends(pg.get_connection_url(), broker, "/", None)


@contextlib.contextmanager
def test_backends() -> Iterator[Backends]:
    run_id = uuid.uuid4().hex[:10]
    wanted = os.environ.get("BATON_TEST_USE_CONTAINERS", "auto") != "no"
    if wanted and importlib.util.find_spec("testcontainers") is not None and docker_engine_reachable():
        with container_backends() as backends:
            yield backends
    else:
        with local_backends(run_id) as backends:
            yield backends


@contextlib.contextmanager
def separate_backends(backends: Backends, label: str) -> Iterator[Backends]:
    """A database and a vhost of their own beside `backends` (same servers), for a test whose
    Baton must be the only one on them: its tracker and scheduler, not the test process's, must
    be the ones that answer."""
    import asyncio

    if backends.rabbitmqctl is None:
        raise RuntimeError("a separate vhost needs the machine's rabbitmqctl")
    run_id = f"{label}_{uuid.uuid4().hex[:8]}"
    server, _, _ = backends.database_url.rpartition("/")
    amqp, _, _ = backends.broker_url.rpartition("/")
    database, vhost = f"baton_test_{run_id}", f"baton-test-{run_id}"
    asyncio.run(_create_database(f"{server}/postgres", database))
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield Backends(f"{server}/{database}", f"{amqp}/{vhost}", vhost, backends.rabbitmqctl)
    finally:
        with contextlib.suppress(Exception):
            _rabbitmqctl("delete_vhost", vhost)
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(f"{server}/postgres", database))
