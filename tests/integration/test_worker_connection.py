"""`GET /api/workers/connection`: how a worker reaches the broker, for keys of scope worker, and
a clear refusal when the worker's envelope schema and the server's do not match. The tracker
answers an RPC of a schema it does not read with the same kind of refusal.

With `worker_broker_url` configured the API gives workers that URL (the worker user's, not the
server's), and a real worker started with only the API's URL connects to RabbitMQ as that user,
unless its BATON_BROKER_URL says otherwise: the API is served over HTTP here, as a worker meets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn

from baton._settings import ClientSettings
from baton._transport import RequestRejected
from baton._transport.amqp import AmqpTracker
from baton._worker._settings import WorkerSettings
from baton._worker._worker import Worker
from baton_schemas.compat import SCHEMA_VERSION, baton_version
from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Running
from baton_server.api.app import create_app
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends
from ..support.processes import free_port
from ..support.waiting import eventually


async def test_a_worker_key_learns_the_broker_and_the_installation(
    api: httpx.AsyncClient, api_keys: dict[str, str], ctx: ServerContext, server_settings: ServerSettings
) -> None:
    for scope in ("worker", "admin"):
        answer = await api.get(
            "/api/workers/connection", headers={"Authorization": f"Bearer {api_keys[scope]}"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["broker_url"] == server_settings.broker_url  # no worker URL configured
        assert body["installation_id"] == str(ctx.installation_id)
        assert body["schema_version"] == SCHEMA_VERSION
        assert body["server_version"] == baton_version()
    for scope in ("read", "run", "deploy", "events"):
        refused = await api.get(
            "/api/workers/connection", headers={"Authorization": f"Bearer {api_keys[scope]}"}
        )
        assert refused.status_code == 403
        assert "this needs worker" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("schema", "age"), [(SCHEMA_VERSION + 1, "too new"), (SCHEMA_VERSION - 1, "too old")]
)
async def test_a_worker_of_another_schema_is_refused_naming_both_versions(
    api: httpx.AsyncClient, api_keys: dict[str, str], schema: int, age: str
) -> None:
    answer = await api.get(
        "/api/workers/connection",
        params={"version": "9.9.9", "schema_version": schema, "min_schema_version": min(schema, 1)},
        headers={"Authorization": f"Bearer {api_keys['worker']}"},
    )
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert f"this worker (baton 9.9.9, message schema {schema}" in detail
    assert f"is {age} for the server (baton {baton_version()}, message schema {SCHEMA_VERSION}" in detail


async def test_the_tracker_answers_an_rpc_of_another_schema_with_why(
    backends: Backends, tracker: TrackerService
) -> None:
    newer = ProposeState(flow_run_id=uuid.uuid4(), state=Running(), schema_version=SCHEMA_VERSION + 1)
    async with await AmqpTracker.connect(backends.broker_url, rpc_timeout=10) as client:
        with pytest.raises(RequestRejected) as refused:
            await client.propose_state(newer)
    assert refused.value.status == 409
    assert f"envelope schema {SCHEMA_VERSION + 1} (newer than this server" in refused.value.detail


def _rabbitmqctl(backends: Backends, *args: str) -> str:
    if backends.rabbitmqctl is None:
        pytest.skip("a RabbitMQ user of the test's own needs the machine's rabbitmqctl")
    done = subprocess.run(
        [backends.rabbitmqctl, "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


@pytest.fixture
def worker_user(backends: Backends) -> Iterator[tuple[str, str]]:
    """A RabbitMQ user of this test's own, allowed on this run's vhost, and the URL that logs in
    as it: what an operator configures as `worker_broker_url` (the server logs in as guest)."""
    user, password = f"baton-worker-{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    _rabbitmqctl(backends, "add_user", user, password)
    try:
        _rabbitmqctl(backends, "set_permissions", "-p", backends.vhost, user, ".*", ".*", ".*")
        parts = urlsplit(backends.broker_url)
        netloc = f"{quote(user, safe='')}:{password}@{parts.hostname}:{parts.port or 5672}"
        yield user, urlunsplit(parts._replace(netloc=netloc))
    finally:
        _rabbitmqctl(backends, "delete_user", user)


@pytest.fixture
async def served_api(
    ctx: ServerContext, server_settings: ServerSettings, worker_user: tuple[str, str]
) -> AsyncIterator[str]:
    """The API, with `worker_broker_url` set to the worker user's URL, served over HTTP on a free
    port; its URL. It shares the test process's context (pools, broker, outbox) but for the
    settings, so no second outbox publishes this run's rows."""
    settings = server_settings.model_copy(update={"worker_broker_url": worker_user[1]})
    app = create_app(settings, dataclasses.replace(ctx, settings=settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        if serving.done():
            serving.result()  # why it could not serve
        return server.started

    await eventually(started, what="the API served over HTTP")
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.should_exit = True
        await serving


async def test_the_api_gives_workers_the_configured_broker_url(
    served_api: str, worker_user: tuple[str, str], api_keys: dict[str, str], server_settings: ServerSettings
) -> None:
    _, worker_url = worker_user
    assert worker_url != server_settings.broker_url
    headers = {"Authorization": f"Bearer {api_keys['worker']}"}
    async with httpx.AsyncClient(headers=headers) as http:
        answer = await http.get(f"{served_api}/workers/connection")
    assert answer.status_code == 200, answer.text
    assert answer.json()["broker_url"] == worker_url


def _users_connected(backends: Backends) -> list[str]:
    """The users of this run's vhost's connections, as RabbitMQ sees them."""
    listed = _rabbitmqctl(backends, "list_connections", "vhost", "user")
    rows = (line.split("\t") for line in listed.splitlines() if line.strip())
    return [user for vhost, user in rows if vhost == backends.vhost]


@pytest.mark.parametrize("override", [False, True], ids=["the-api-answer", "baton-broker-url-over-it"])
async def test_a_worker_reaches_the_broker_the_api_says_unless_baton_broker_url_overrides_it(
    override: bool,
    served_api: str,
    worker_user: tuple[str, str],
    backends: Backends,
    api_keys: dict[str, str],
    tracker: TrackerService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, worker_url = worker_user
    # the worker's environment, as `baton worker start` reads it
    monkeypatch.setenv("BATON_HOME", str(tmp_path / "baton-home"))
    monkeypatch.setenv("BATON_API_URL", served_api)
    monkeypatch.setenv("BATON_API_KEY", api_keys["worker"])
    if override:
        monkeypatch.setenv("BATON_BROKER_URL", backends.broker_url)  # guest, not the worker user
    else:
        monkeypatch.delenv("BATON_BROKER_URL", raising=False)
    expected_url = backends.broker_url if override else worker_url

    pool = f"connection-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api_keys['deploy']}"}) as http:
        created = await http.post(f"{served_api}/work_pools", json={"name": pool, "type": "process"})
    assert created.status_code == 201, created.text
    worker = Worker(WorkerSettings(pool=pool, name=pool), ClientSettings.load(), echo_output=False)
    try:
        await worker.start()
        assert worker.tracker is not None
        assert worker.tracker.link.url == expected_url
        # RabbitMQ's side: the worker user logs in only when the worker took the API's URL
        assert (user in _users_connected(backends)) is not override
    finally:
        await worker.shutdown(drain_seconds=0)
