"""A flood of requests with unknown API keys against a real `baton server start`.

Once, 200 concurrent GETs each with a different unknown key froze the API, the tracker and the
scheduler for good, and SIGTERM was ignored: every route held a pooled connection while the key
check waited for a second one from the same pool. Now the key is checked before any connection
is taken, the API has a pool of its own, and unknown keys are answered from memory.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import httpx
import pytest

from baton._transport.amqp import AmqpTracker
from baton_schemas.runs import FlowRunCreate
from baton_schemas.topology import pool_queue_name

from ..support.backends import Backends, separate_backends
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos

FLOOD = 300


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    """This test's Baton must be the only one on its database and vhost: the tracker and the
    scheduler that answer are its own."""
    with separate_backends(backends, "flood") as separate:
        yield separate


def _unknown_key() -> str:
    return f"baton_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


async def _flood(url: str, n: int) -> Counter[str]:
    """n concurrent GETs, each with a different unknown key: how each ended."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=20) as client:

        async def one() -> str:
            try:
                response = await client.get(
                    "/flow_runs", headers={"Authorization": f"Bearer {_unknown_key()}"}
                )
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return str(response.status_code)

        return Counter(await asyncio.gather(*(one() for _ in range(n))))


async def _all_set(events: list[asyncio.Event], n: int) -> bool:
    return len(events) == n and all(e.is_set() for e in events)


async def test_unknown_keys_cannot_wedge_the_server(own_backends: Backends, tmp_path: Path) -> None:
    key = subprocess.run(  # noqa: ASYNC221 - the operator's first command, before anything runs
        [BATON, "api-key", "create", "--name", "flood-admin", "--scope", "admin"],
        env=baton_env(own_backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    with server_process(own_backends, tmp_path, BATON_SHUTDOWN_GRACE_SECONDS="2") as server:
        async with httpx.AsyncClient(base_url=server.api_url, headers=headers, timeout=10) as api:
            assert (await api.post("/work_pools", json={"name": "flood"})).status_code == 201
            deployment = await api.post(
                "/deployments",
                json={"name": "d", "flow_name": "flooded", "entrypoint": "f.py:f", "work_pool_name": "flood"},
            )
            assert deployment.status_code == 201, deployment.text
            # due after the flood has started: only a working scheduler dispatches it
            due = datetime.now(UTC) + timedelta(seconds=1.5)
            run = await api.post(
                f"/deployments/{deployment.json()['id']}/runs", json={"scheduled_time": due.isoformat()}
            )
            assert run.status_code == 201, run.text

            outcomes = await _flood(server.api_url, FLOOD)
            assert outcomes == Counter({"401": FLOOD}), outcomes

            # a valid key is served, /ready is honest, and nothing else was starved
            listed = await api.get("/flow_runs")
            assert listed.status_code == 200, listed.text
            assert (await api.get(server.api_url.removesuffix("/api") + "/ready")).status_code == 200
            async with await AmqpTracker.connect(own_backends.broker_url, rpc_timeout=10) as tracker:
                made = await tracker.create_flow_run(FlowRunCreate(flow_name="after the flood"))
                assert made.flow_name == "after the flood"
            connection = await aio_pika.connect(own_backends.broker_url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(pool_queue_name("flood", "default"), ensure=False)

                async def dispatched() -> bool:
                    message = await queue.get(fail=False)
                    if message is None:
                        return False
                    await message.ack()
                    return run.json()["id"].encode() in message.body

                await eventually(dispatched, timeout=20, what="the scheduler's dispatch of the due run")

            # overloaded again (a second flood, and log streams that never end by themselves),
            # SIGTERM still ends the process
            opened: list[asyncio.Event] = []

            async def follow() -> None:
                opened.append(event := asyncio.Event())
                params = {"flow_run_id": run.json()["id"]}
                async with api.stream("GET", "/logs/stream", params=params, timeout=None) as response:
                    assert response.status_code == 200
                    event.set()
                    async for _ in response.aiter_bytes():
                        pass

            streams = [asyncio.create_task(follow()) for _ in range(5)]
            await eventually(
                lambda: _all_set(opened, 5), what="five log streams open (requests that never end)"
            )
            second = asyncio.create_task(_flood(server.api_url, FLOOD))
            server.process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(server.process.wait, 30)
            assert exit_code == 0, server.log()
            for task in (*streams, second):
                task.cancel()
            await asyncio.gather(*streams, second, return_exceptions=True)
    assert "stopped" in server.log()
