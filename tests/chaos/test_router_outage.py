"""PostgreSQL stops under a running router process (a private cluster, never the machine's):
the events that arrive meanwhile are held unacknowledged, not dropped or dead-lettered, and once
the database is back every expected firing happens, once."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from baton._amqp import PERSISTENT, Connection, Properties
from baton_schemas.topology import EVENTS

from ..support.backends import Backends
from ..support.private import PrivatePostgres
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually
from .test_database_outage import outage_backends

pytestmark = pytest.mark.chaos
__all__ = ["outage_backends"]  # the fixture, shared with the API's outage test

KEYS = 40  # for_each keys, each sent two events before the outage and two during it


def _cli(backends: Backends, *args: str) -> str:
    return subprocess.run(
        [BATON, *args], env=baton_env(backends), capture_output=True, text=True, check=True
    ).stdout.strip()


async def _publish(backends: Backends, events: list[dict[str, Any]]) -> None:
    connection = await Connection.open(backends.broker_url, name="outage-publisher")
    try:
        channel = await connection.channel(confirms=True)
        confirms = []
        for event in events:
            props = Properties(
                content_type="application/json", message_id=event["id"], delivery_mode=PERSISTENT
            )
            confirm = channel.publish(EVENTS, event["event"], orjson.dumps(event), props, mandatory=True)
            assert confirm is not None
            confirms.append(confirm)
        await asyncio.gather(*confirms)
    finally:
        await connection.close()


def _events(name: str, keys: range) -> list[dict[str, Any]]:
    return [
        {"id": str(uuid.uuid4()), "event": name, "resource": {"baton.resource.id": f"job.{k}"}}
        for k in keys
        for _ in range(2)
    ]


async def _count(backends: Backends, sql: str) -> int:
    conn = await asyncpg.connect(backends.database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_the_router_holds_events_while_the_database_is_away(
    outage_backends: tuple[Backends, PrivatePostgres], tmp_path: Path
) -> None:
    backends, pg = outage_backends
    await asyncio.to_thread(_cli, backends, "server", "db", "upgrade", "--create")
    key = await asyncio.to_thread(_cli, backends, "api-key", "create", "--name", "outage", "--scope", "admin")
    name = f"outage-{uuid.uuid4().hex[:8]}.done"
    with (
        server_process(backends, tmp_path, "api") as api_process,
        server_process(backends, tmp_path, "router", BATON_SHUTDOWN_GRACE_SECONDS="2") as router,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=api_process.api_url, headers=headers, timeout=30) as api:
            assert (await api.post("/work_pools", json={"name": "outage"})).status_code == 201
            deployment = await api.post(
                "/deployments",
                json={
                    "name": "d",
                    "flow_name": "after-outage",
                    "entrypoint": "f.py:f",
                    "work_pool_name": "outage",
                },
            )
            assert deployment.status_code == 201, deployment.text
            made = await api.post(
                "/automations",
                json={
                    "name": "pairs",
                    "trigger": {"expect": [name], "for_each": ["baton.resource.id"], "threshold": 2},
                    "actions": [
                        {
                            "type": "run-deployment",
                            "deployment": deployment.json()["id"],
                            "parameters": {"key": "{{ event.resource['baton.resource.id'] }}"},
                        }
                    ],
                },
            )
            assert made.status_code == 201, made.text
        revision = made.json()["revision"]

        async def indexed() -> bool:
            behind = await _count(
                backends, f"SELECT count(*) FROM router_replicas WHERE revision < {revision}"
            )
            return behind == 0 and await _count(backends, "SELECT count(*) FROM router_replicas") > 0

        await eventually(indexed, what="the router's index has the automation")
        await _publish(backends, _events(name, range(KEYS)))

        async def firings() -> int:
            return await _count(backends, "SELECT count(*) FROM firings")

        await eventually(lambda: _at_least(firings, KEYS), timeout=60, what="the firings before the outage")

        await asyncio.to_thread(pg.stop)
        await _publish(backends, _events(name, range(KEYS, 2 * KEYS)))

        async def paused() -> bool:
            return "paused, the database is away" in router.log()

        await eventually(paused, timeout=60, what="the router pausing for the database")
        await asyncio.to_thread(pg.start)

        await eventually(
            lambda: _at_least(firings, 2 * KEYS), timeout=90, what="the firings after the outage"
        )
        assert router.process.poll() is None
        assert await firings() == 2 * KEYS
        runs = await _count(backends, "SELECT count(DISTINCT idempotency_key) FROM flow_runs")
        assert runs == 2 * KEYS
        assert "the database is back" in router.log()
    assert "dead-lettering" not in router.log()


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
