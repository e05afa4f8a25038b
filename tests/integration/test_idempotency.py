"""Idempotency keys belong to what they create.

The same key again for the same target (a deployment; for an ad-hoc run, its flow) answers
with the run it made; for another target it is a 409 that says whose key it is, never the other
target's run with a 200 (the second deployment would then never run).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from baton._transport import RequestRejected
from baton._transport.amqp import AmqpTracker
from baton_schemas.runs import FlowRunCreate
from baton_server.tracker.service import TrackerService

from ..support.backends import Backends


async def _deployment(api: httpx.AsyncClient, pool: str, name: str) -> str:
    response = await api.post(
        "/api/deployments",
        json={"name": name, "flow_name": f"idem-{pool}", "entrypoint": "f.py:f", "work_pool_name": pool},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_key_reused_on_another_deployment_is_a_409(api: httpx.AsyncClient) -> None:
    pool = f"idem-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201
    first, second = await _deployment(api, pool, "first"), await _deployment(api, pool, "second")
    key = f"nightly-{uuid.uuid4().hex[:6]}"

    made = await api.post(f"/api/deployments/{first}/runs", json={"idempotency_key": key})
    again = await api.post(f"/api/deployments/{first}/runs", json={"idempotency_key": key})
    assert (made.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == made.json()["id"]

    elsewhere = await api.post(f"/api/deployments/{second}/runs", json={"idempotency_key": key})
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["detail"] == (
        f"idempotency key {key!r} belongs to flow run {made.json()['id']} of deployment {first}, "
        f"not of deployment {second}: a key belongs to what it created; use another one for this"
    )
    listed = (await api.get("/api/flow_runs", params={"deployment_id": second})).json()["items"]
    assert listed == []


async def test_scheduler_and_trigger_keys_keep_working(api: httpx.AsyncClient) -> None:
    """The scheduler's `schedule:{id}:{slot}` and the router's `trigger:{automation}:{firing}`
    keys name their deployment's own schedule or automation: each makes one run, however often
    it is sent."""
    pool = f"idem-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201
    deployment = await _deployment(api, pool, "scheduled")
    slot = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    for key in (f"schedule:{uuid.uuid4()}:{slot}", f"trigger:{uuid.uuid4()}:firing-1"):
        answers = [
            await api.post(f"/api/deployments/{deployment}/runs", json={"idempotency_key": key})
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [201, 200, 200]
        assert len({a.json()["id"] for a in answers}) == 1


async def test_ad_hoc_keys_belong_to_their_flow(api: httpx.AsyncClient) -> None:
    key = f"adhoc-{uuid.uuid4().hex[:6]}"
    made = await api.post("/api/flow_runs", json={"flow_name": "idem-a", "idempotency_key": key})
    same = await api.post("/api/flow_runs", json={"flow_name": "idem-a", "idempotency_key": key})
    assert (made.status_code, same.status_code) == (201, 200) and same.json()["id"] == made.json()["id"]
    other = await api.post("/api/flow_runs", json={"flow_name": "idem-b", "idempotency_key": key})
    assert other.status_code == 409
    assert "of flow 'idem-a' (ad hoc), not of flow 'idem-b' (ad hoc)" in other.json()["detail"]


async def test_a_client_chosen_id_belongs_to_its_flow(api: httpx.AsyncClient) -> None:
    run_id = str(uuid.uuid4())
    assert (await api.post("/api/flow_runs", json={"id": run_id, "flow_name": "idem-c"})).status_code == 201
    taken = await api.post("/api/flow_runs", json={"id": run_id, "flow_name": "idem-d"})
    assert taken.status_code == 409 and taken.json()["detail"].startswith(f"id {run_id} belongs to flow run")


@pytest.mark.usefixtures("tracker")
async def test_over_amqp_the_tracker_answers_409_too(backends: Backends, tracker: TrackerService) -> None:
    key = f"amqp-{uuid.uuid4().hex[:6]}"
    async with await AmqpTracker.connect(backends.broker_url) as client:
        made = await client.create_flow_run(FlowRunCreate(flow_name="idem-e", idempotency_key=key))
        again = await client.create_flow_run(FlowRunCreate(flow_name="idem-e", idempotency_key=key))
        assert again.id == made.id
        with pytest.raises(RequestRejected) as refused:
            await client.create_flow_run(FlowRunCreate(flow_name="idem-f", idempotency_key=key))
    assert refused.value.status == 409
