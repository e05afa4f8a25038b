"""The SDK's HTTP client against the API app: a proposal means the same by HTTP as on the broker.

Every field of a `ProposeState` reaches the tracker when it travels as the body of
`POST /api/flow_runs/{id}/set_state`: a claim made over HTTP is recorded with its worker, its
claim id and its lease, and a proposal under a stale claim is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from baton._transport.http import BatonClient
from baton_schemas.envelopes import Claim, ProposeState
from baton_schemas.pages import FlowRunPage
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Completed, Pending, Running, Scheduled, Verdict
from baton_server.api.app import create_app
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings


@pytest.fixture
async def client(
    ctx: ServerContext, server_settings: ServerSettings, api_keys: dict[str, str]
) -> AsyncIterator[BatonClient]:
    """`BatonClient` as the engine and the worker build it, talking to the API app in process."""
    app = create_app(server_settings, ctx)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with BatonClient("http://baton.test/api", api_keys["write"], transport=transport) as sdk:
            yield sdk


async def _scheduled_pool_run(api: httpx.AsyncClient, client: BatonClient) -> uuid.UUID:
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    created = await api.post("/api/work_pools", json={"name": pool, "type": "process"})
    assert created.status_code == 201, created.text
    run = await client.create_flow_run(
        FlowRunCreate(flow_name="claimed over http", work_pool_name=pool, state=Scheduled())
    )
    return run.id


async def _claim_row(
    ctx: ServerContext, run_id: uuid.UUID
) -> tuple[str | None, uuid.UUID | None, float | None]:
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT worker_id, claim_id, lease_seconds FROM flow_runs WHERE id = $1", run_id
        )
    assert row is not None
    return row["worker_id"], row["claim_id"], row["lease_seconds"]


async def test_a_claim_over_http_is_recorded_with_its_worker_and_claim_id(
    api: httpx.AsyncClient, client: BatonClient, ctx: ServerContext
) -> None:
    run_id = await _scheduled_pool_run(api, client)
    claim = ProposeState(
        flow_run_id=run_id, state=Pending(), claim=Claim(worker_id="http-worker-1", lease_seconds=45)
    )
    assert (await client.propose_state(claim)).verdict is Verdict.ACCEPT
    assert await _claim_row(ctx, run_id) == ("http-worker-1", claim.transition_id, 45.0)
    assert (await client.read_flow_run(run_id)).worker_id == "http-worker-1"

    # Under its claim the run goes on; a proposal under another claim is not the owner's.
    running = ProposeState(flow_run_id=run_id, state=Running(), claim_id=claim.transition_id)
    assert (await client.propose_state(running)).verdict is Verdict.ACCEPT
    stale = ProposeState(flow_run_id=run_id, state=Completed(), claim_id=uuid.uuid4())
    refused = await client.propose_state(stale)
    assert refused.verdict is Verdict.ABORT, refused
    assert (await client.read_flow_run(run_id)).state.type is Running().type


async def test_set_flow_run_state_takes_the_claim_fields_too(
    api: httpx.AsyncClient, client: BatonClient, ctx: ServerContext
) -> None:
    run_id = await _scheduled_pool_run(api, client)
    transition_id = uuid.uuid4()
    result = await client.set_flow_run_state(
        run_id, Pending(), transition_id=transition_id, claim=Claim(worker_id="http-worker-2")
    )
    assert result.verdict is Verdict.ACCEPT
    worker_id, claim_id, _ = await _claim_row(ctx, run_id)
    assert (worker_id, claim_id) == ("http-worker-2", transition_id)
    stale = await client.set_flow_run_state(run_id, Running(), claim_id=uuid.uuid4())
    assert stale.verdict is Verdict.ABORT


async def test_a_misspelt_set_state_field_is_refused_with_its_name(api: httpx.AsyncClient) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "strict body"})).json()
    body = {"state": Running().model_dump(mode="json"), "claimid": str(uuid.uuid4())}
    response = await api.post(f"/api/flow_runs/{run['id']}/set_state", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "claimid"]


async def test_pages_are_the_shared_page_models(api: httpx.AsyncClient, client: BatonClient) -> None:
    name = f"paged-{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        await client.create_flow_run(FlowRunCreate(flow_name=name))
    first = await client.read_flow_runs(flow_name=name, limit=2)
    assert isinstance(first, FlowRunPage) and len(first.items) == 2 and first.next_cursor
    rest = await client.read_flow_runs(flow_name=name, limit=2, cursor=first.next_cursor)
    assert len(rest.items) == 1 and rest.next_cursor is None
    assert {r.id for r in first.items}.isdisjoint(r.id for r in rest.items)
