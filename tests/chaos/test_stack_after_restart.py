"""One AMQP stack per process: after a RabbitMQ restart the server declares again what it uses.

A work pool's queue is deleted (as a broker that lost it would have it) and the broker is
restarted. While it is away, `/ready` says so (it checks the connection the services really
use); once it is back the server's link reconnects, declares the topology and every pool queue
again, and a deployment run flows through the pool to a worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from baton_schemas.topology import pool_queue_name

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually

pytestmark = pytest.mark.chaos

FLOW = """
from baton import flow


@flow
def hello(name: str = "world") -> str:
    return f"hello {name}"
"""


@pytest.fixture
def worker_env(chaos_backends: Backends) -> Iterator[dict[str, str]]:
    key = subprocess.run(
        [BATON, "api-key", "create", "--name", f"stack-{uuid.uuid4().hex[:6]}", "--scope", "admin"],
        env=baton_env(chaos_backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    yield {"BATON_API_KEY": key}


async def _pool_queue_exists(url: str, name: str) -> bool:
    try:
        connection = await aio_pika.connect(url, timeout=5)
    except Exception:
        return False
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True


async def _start_run(api: httpx.AsyncClient, deployment: dict[str, Any]) -> str:
    run = (await api.post(f"/deployments/{deployment['id']}/runs", json={})).json()
    return str(run["id"])


async def _state(api: httpx.AsyncClient, run_id: str) -> str:
    return str((await api.get(f"/flow_runs/{run_id}")).json()["state"]["type"])


async def test_pool_queues_come_back_and_runs_flow_after_a_broker_restart(
    chaos_backends: Backends, private_mq: PrivateRabbitMQ, worker_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    pool = f"restart-{uuid.uuid4().hex[:8]}"
    with server_process(chaos_backends, tmp_path) as server:
        ready_url = server.api_url.removesuffix("/api") + "/ready"
        headers = {"Authorization": f"Bearer {worker_env['BATON_API_KEY']}"}
        async with httpx.AsyncClient(base_url=server.api_url, headers=headers, timeout=30) as api:
            assert (await api.post("/work_pools", json={"name": pool})).status_code == 201
            body = {"name": "d", "flow_name": "hello", "entrypoint": "flows.py:hello", "work_pool_name": pool}
            deployment = (await api.post("/deployments", json=body)).json()
            queue = pool_queue_name(pool, "default")
            assert await _pool_queue_exists(chaos_backends.broker_url, queue)

            # the pool's queue is lost, and the broker goes away
            connection = await aio_pika.connect(chaos_backends.broker_url)
            async with connection:
                await (await connection.channel()).queue_delete(queue)
            await asyncio.to_thread(private_mq.stop_app)
            try:

                async def ready_says_so() -> dict[str, str] | None:
                    answer = await api.get(ready_url)
                    return answer.json() if answer.status_code == 503 else None

                checks = await eventually(ready_says_so, timeout=30, what="/ready reporting the broker away")
                assert checks is not None and checks["rabbitmq"].startswith("unavailable")
                assert checks["postgres"] == "ok"
            finally:
                await asyncio.to_thread(private_mq.start_app)

            async def ready() -> bool:
                return (await api.get(ready_url)).status_code == 200

            await eventually(ready, timeout=60, what="/ready again")
            assert await eventually(
                lambda: _pool_queue_exists(chaos_backends.broker_url, queue),
                timeout=30,
                what="the pool queue",
            )

            # a run flows through the pool to a worker that knows only the API
            env = baton_env(chaos_backends, BATON_API_URL=server.api_url, **worker_env)
            del env["BATON_BROKER_URL"], env["BATON_DATABASE_URL"]
            log_path = tmp_path / "worker.log"
            with log_path.open("wb") as log:
                worker = await asyncio.create_subprocess_exec(
                    BATON, "worker", "start", "--pool", pool, cwd=tmp_path, env=env, stdout=log, stderr=log
                )
            try:
                run_id = await _start_run(api, deployment)

                async def completed() -> bool:
                    return await _state(api, run_id) == "COMPLETED"

                await eventually(completed, timeout=60, interval=0.2, what="the run completed")
            finally:
                worker.terminate()
                await asyncio.wait_for(worker.wait(), 30)

            # a memory alarm: the server's link is blocked as soon as it publishes, and /ready
            # says why
            await asyncio.to_thread(private_mq.block_publishers)
            try:
                assert (await api.post("/flow_runs", json={"flow_name": "while blocked"})).status_code == 201
                checks = await eventually(ready_says_so, timeout=30, what="/ready reporting the block")
                assert checks is not None and checks["rabbitmq"].startswith("blocked: the broker blocked")
            finally:
                await asyncio.to_thread(private_mq.unblock_publishers)
            await eventually(ready, timeout=30, what="/ready once unblocked")
            # and the log says why, and when it is over
            assert "the broker blocks publishing:" in server.log()

            async def unblock_logged() -> bool:
                return "the broker unblocked publishing" in server.log()

            await eventually(unblock_logged, timeout=10, what="the unblock in the server's log")


async def test_ready_reports_a_broker_killed_with_sigkill(
    chaos_backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    """kill -9 of the node: no connection.close, the sockets are just reset. `/ready` says the
    broker is away until it is back, then serves again."""
    with server_process(chaos_backends, tmp_path) as server:
        ready_url = server.api_url.removesuffix("/api") + "/ready"
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(ready_url)).status_code == 200

            async def ready_says_so() -> dict[str, str] | None:
                answer = await http.get(ready_url)
                return answer.json() if answer.status_code == 503 else None

            await asyncio.to_thread(private_mq.kill)
            try:
                checks = await eventually(
                    ready_says_so, timeout=30, what="/ready reporting the killed broker"
                )
                assert checks is not None and checks["rabbitmq"].startswith("unavailable"), checks
            finally:
                await asyncio.to_thread(private_mq.boot)

            async def ready() -> bool:
                return (await http.get(ready_url)).status_code == 200

            await eventually(ready, timeout=60, what="/ready once the broker is back")
