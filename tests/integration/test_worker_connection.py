"""`GET /api/workers/connection`: how a worker reaches the broker, for keys of scope worker, and
a clear refusal when the worker's envelope schema and the server's do not match. The tracker
answers an RPC of a schema it does not read with the same kind of refusal."""

from __future__ import annotations

import uuid

import httpx
import pytest

from baton._transport import RequestRejected
from baton._transport.amqp import AmqpTracker
from baton_schemas.compat import SCHEMA_VERSION, baton_version
from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Running
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends


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
