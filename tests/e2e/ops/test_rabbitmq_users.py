"""deploy/rabbitmq/definitions.json, as a deployment loads it: every component as its own user.

A RabbitMQ node of its own boots with the file (as compose does), so the users, passwords,
permissions and exchanges under test are exactly the file's. Then a real `baton server start`
(as baton-server), a real `baton worker start` (as baton-worker), an outside event publisher
(baton-publisher) and an outside state subscriber (baton-subscriber) each do their job, and each
is refused what it must not do.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiormq
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from ...support.backends import Backends
from ...support.private import PrivateRabbitMQ, private_rabbitmq
from ...support.processes import BATON, ServerProcess, baton_env, server_process
from ...support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
VHOST = "baton"

FLOW = """
from baton import flow, task


@task
def shout(name: str) -> str:
    return name.upper()


@flow(log_prints=True)
def greet(name: str) -> str:
    print("greeting", name)
    return f"hello {shout(name)}"
"""


def _password(user: str) -> str:
    definitions = json.loads(DEFINITIONS.read_text())
    (found,) = [u["password"] for u in definitions["users"] if u["name"] == user]
    return str(found)


@dataclass
class Installation:
    mq: PrivateRabbitMQ
    server: ServerProcess
    api: httpx.Client
    folder: Path
    api_key: str

    def url(self, user: str) -> str:
        return self.mq.url(VHOST, user=user, password=_password(user))


async def _database(admin_url: str, name: str, *, drop: bool = False) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def installation(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    folder = tmp_path_factory.mktemp("definitions")
    (folder / "flows.py").write_text(textwrap.dedent(FLOW))
    admin_db, _, _ = backends.database_url.rpartition("/")
    database = f"baton_defs_{uuid.uuid4().hex[:10]}"
    asyncio.run(_database(f"{admin_db}/postgres", database))
    try:
        with private_rabbitmq(definitions=DEFINITIONS) as mq:
            server_url = mq.url(VHOST, user="baton-server", password=_password("baton-server"))
            own = Backends(f"{admin_db}/{database}", server_url, VHOST, None)
            key = subprocess.run(
                [BATON, "api-key", "create", "--name", "definitions-admin", "--scope", "admin"],
                env=baton_env(own),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            with (
                server_process(own, folder) as server,
                httpx.Client(
                    base_url=server.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
                ) as api,
            ):
                yield Installation(mq, server, api, folder, key)
    finally:
        asyncio.run(_database(f"{admin_db}/postgres", database, drop=True))


def _post(api: httpx.Client, path: str, body: dict[str, object]) -> dict[str, object]:
    response = api.post(path, json=body)
    assert response.status_code < 300, f"POST {path}: {response.status_code} {response.text}"
    return response.json()  # type: ignore[no-any-return]


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    pool: str
    deployment: dict[str, object]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker(installation: Installation) -> Iterator[Worker]:
    """`baton worker start` as baton-worker, serving a pool of its own with a deployment."""
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    _post(installation.api, "/work_pools", {"name": pool})
    deployment = _post(
        installation.api,
        "/deployments",
        {"name": "users", "flow_name": "greet", "entrypoint": "flows.py:greet", "work_pool_name": pool},
    )
    env = {
        **baton_env(Backends("", installation.url("baton-worker"), VHOST, None)),
        "BATON_API_URL": installation.server.api_url,
        "BATON_API_KEY": installation.api_key,
    }
    env.pop("BATON_DATABASE_URL")
    log_path = installation.folder / f"worker-{pool}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [BATON, "worker", "start", "--pool", pool, "--name", "as-baton-worker"],
            cwd=installation.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Worker(process, log_path, pool, deployment)
    finally:
        process.terminate()
        process.wait(30)


class As:
    """An AMQP client logged in as one of the definitions' users (a channel per attempt: a
    refused operation closes its channel)."""

    def __init__(self, installation: Installation, user: str) -> None:
        self.installation = installation
        self.user = user
        self.connection: AbstractConnection | None = None

    async def channel(self) -> AbstractChannel:
        if self.connection is None:
            self.connection = await aio_pika.connect(self.installation.url(self.user))
        return await self.connection.channel(publisher_confirms=True)

    async def publish(self, exchange: str, key: str) -> object:
        channel = await self.channel()
        target = await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
        return await target.publish(aio_pika.Message(b"{}"), routing_key=key, mandatory=False)

    async def get(self, queue: str) -> object:
        channel = await self.channel()
        return await (await channel.get_queue(queue, ensure=False)).get(fail=False)

    async def declare(self, queue: str) -> object:
        return await (await self.channel()).declare_queue(queue, auto_delete=True)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


@pytest.fixture
async def users(installation: Installation) -> AsyncIterator[dict[str, As]]:
    clients = {
        user: As(installation, user) for user in ("baton-publisher", "baton-subscriber", "baton-worker")
    }
    yield clients
    for client in clients.values():
        await client.close()


async def _refused(what: str, attempt: Awaitable[object]) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as refused:
        await attempt
    assert "ACCESS_REFUSED" in str(refused.value), what


async def test_a_run_goes_through_the_worker_and_its_states_reach_the_subscriber(
    installation: Installation, worker: Worker, users: dict[str, As]
) -> None:
    inbox = await (await users["baton-subscriber"].channel()).declare_queue(exclusive=True)
    await inbox.bind("baton.states", routing_key="flow-run.#")

    run = _post(
        installation.api, f"/deployments/{worker.deployment['id']}/runs", {"parameters": {"name": "F"}}
    )

    async def completed() -> bool:
        assert worker.process.poll() is None, worker.log()
        state = installation.api.get(f"/flow_runs/{run['id']}").json()["state"]
        assert state["type"] not in {"FAILED", "CRASHED", "CANCELLED"}, (state, worker.log())
        return bool(state["type"] == "COMPLETED")

    await eventually(completed, timeout=60, what="the run to complete through the worker")
    seen: list[str] = []

    async def subscriber_saw_completion() -> bool:
        while (message := await inbox.get(no_ack=True, fail=False)) is not None:
            change = json.loads(message.body)
            if change["flow_run_id"] == run["id"]:
                seen.append(change["state"]["type"])
        return "COMPLETED" in seen

    await eventually(subscriber_saw_completion, what="the subscriber to see the run complete")
    assert seen == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]

    # the flow process reported its task run and its logs over AMQP, as baton-worker
    async def reported() -> bool:
        tasks = installation.api.get("/task_runs", params={"flow_run_id": str(run["id"])}).json()["items"]
        logs = installation.api.get("/logs", params={"flow_run_id": str(run["id"])}).json()["items"]
        finished = [t for t in tasks if t["state"]["type"] == "COMPLETED"]
        return bool(finished) and any(log["message"] == "greeting F" for log in logs)

    await eventually(reported, what="the task run and the logs at the server")
    assert "ACCESS_REFUSED" not in worker.log()
    assert "ACCESS_REFUSED" not in installation.server.log()


async def test_the_outside_publisher_may_publish_its_events_and_nothing_else(users: dict[str, As]) -> None:
    publisher = users["baton-publisher"]
    confirmed = await publisher.publish("baton.events", "order.created")
    assert isinstance(confirmed, aiormq.spec.Basic.Ack)

    await _refused("a state change", publisher.publish("baton.states", "flow-run.completed.etl"))
    await _refused("a Baton event", publisher.publish("baton.events", "baton.flow-run.Completed"))
    await _refused("a tracker message", publisher.publish("baton.tracker", "tracker"))
    await _refused("straight into a queue", publisher.publish("", "baton.tracker"))
    await _refused("a queue of its own", publisher.declare("publisher-queue"))
    await _refused("reading baton.tracker", publisher.get("baton.tracker"))


async def test_the_subscriber_may_read_state_changes_and_nothing_else_of_baton(users: dict[str, As]) -> None:
    subscriber = users["baton-subscriber"]
    named = await (await subscriber.channel()).declare_queue(
        f"etl-alerts-{uuid.uuid4().hex[:6]}", auto_delete=True
    )
    await named.bind("baton.states", routing_key="flow-run.failed.#")

    async def take(message: AbstractIncomingMessage) -> None:
        raise AssertionError(f"a subscriber read baton.tracker: {message!r}")

    tracker = await (await subscriber.channel()).get_queue("baton.tracker", ensure=False)
    await _refused("consuming baton.tracker", tracker.consume(take))
    await _refused("reading baton.tracker", subscriber.get("baton.tracker"))
    await _refused("reading baton.tracker.rpc", subscriber.get("baton.tracker.rpc"))
    own = await (await subscriber.channel()).declare_queue(exclusive=True)
    await _refused("binding to baton.tracker", own.bind("baton.tracker", routing_key="tracker"))
    await _refused("into baton.tracker through the default exchange", subscriber.publish("", "baton.tracker"))
    await _refused("publishing a state change", subscriber.publish("baton.states", "flow-run.failed.x"))
    await _refused("a queue named like Baton's", subscriber.declare("baton.states-copy"))


async def test_the_worker_may_not_publish_state_changes_or_read_the_trackers_queue(
    users: dict[str, As],
) -> None:
    worker = users["baton-worker"]
    await _refused("a state change", worker.publish("baton.states", "flow-run.completed.x"))
    await _refused("a Baton event", worker.publish("baton.events", "baton.flow-run.Failed"))
    await _refused("reading the tracker's queue", worker.get("baton.tracker"))
    await _refused("a pool queue of its own making", worker.declare("baton.pool.x.y"))
    await _refused("straight into a queue", worker.publish("", "baton.pool.x.y"))


async def test_guest_cannot_log_in(installation: Installation) -> None:
    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError) as refused:
        # aiormq rather than aio_pika: an aio_pika Connection that never opened closes itself
        # in __del__, which leaves a coroutine never awaited when collected off the loop
        await aiormq.connect(installation.mq.url(VHOST, user="guest", password="guest"))
    assert "ACCESS_REFUSED" in str(refused.value)
    assert "guest" not in installation.mq.ctl("list_users")
