"""The REST API as a client uses it: auth, validation, limits, runs, history, logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from baton_schemas.states import Completed, Pending, Running
from baton_server.context import ServerContext


async def test_health_and_ready(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"postgres": "ok", "rabbitmq": "ok", "outbox": "ok"}


async def test_missing_key_is_401_and_weak_key_is_403(
    api: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    anonymous = await api.get("/api/flow_runs", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert "API key" in anonymous.json()["detail"]
    wrong = await api.get("/api/flow_runs", headers={"Authorization": "Bearer baton_nope"})
    assert wrong.status_code == 401
    reader = {"Authorization": f"Bearer {api_keys['read']}"}
    assert (await api.get("/api/flow_runs", headers=reader)).status_code == 200
    refused = await api.post("/api/flow_runs", json={"flow_name": "x"}, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this key has scope read; this needs run or worker"


async def test_force_needs_admin(api: httpx.AsyncClient, api_keys: dict[str, str]) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "forced"})).json()
    body = {"state": Completed().model_dump(mode="json"), "force": True}
    assert (await api.post(f"/api/flow_runs/{run['id']}/set_state", json=body)).status_code == 403
    admin = {"Authorization": f"Bearer {api_keys['admin']}"}
    forced = await api.post(f"/api/flow_runs/{run['id']}/set_state", json=body, headers=admin)
    assert forced.json()["verdict"] == "ACCEPT"


async def test_bad_body_is_422_naming_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/flow_runs", json={"flow_name": "x", "tags": "not-a-list"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tags"]
    unknown = await api.post(
        "/api/flow_runs/" + str(uuid.uuid4()) + "/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert unknown.status_code == 404
    no_flow = await api.post("/api/flow_runs", json={})
    assert no_flow.status_code == 422


async def test_oversized_body_is_413(api: httpx.AsyncClient, ctx: ServerContext) -> None:
    huge = "x" * (ctx.settings.api_max_body_bytes + 10)
    response = await api.post("/api/flow_runs", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_create_is_idempotent_by_id_and_key(api: httpx.AsyncClient) -> None:
    run_id = str(uuid.uuid4())
    first = await api.post("/api/flow_runs", json={"id": run_id, "flow_name": "idem"})
    again = await api.post("/api/flow_runs", json={"id": run_id, "flow_name": "idem"})
    assert (first.status_code, again.status_code) == (201, 200)
    keyed = [
        await api.post("/api/flow_runs", json={"flow_name": "idem", "idempotency_key": f"k-{run_id}"})
        for _ in range(2)
    ]
    assert keyed[0].json()["id"] == keyed[1].json()["id"]


async def test_transitions_and_history_over_http(api: httpx.AsyncClient) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "http flow"})).json()
    for state in (Pending(), Running(), Completed()):
        result = await api.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": state.model_dump(mode="json")}
        )
        assert result.json()["verdict"] == "ACCEPT"
    history = (await api.get(f"/api/flow_runs/{run['id']}/states")).json()
    assert [s["name"] for s in history] == ["Scheduled", "Pending", "Running", "Completed"]
    read = (await api.get(f"/api/flow_runs/{run['id']}")).json()
    assert read["state"]["type"] == "COMPLETED" and read["run_count"] == 1


async def test_listing_filters_and_keyset_pages(api: httpx.AsyncClient) -> None:
    flow = f"paged-{uuid.uuid4().hex[:6]}"
    tag = f"t-{uuid.uuid4().hex[:6]}"
    created = []
    for i in range(7):
        created.append(
            (
                await api.post("/api/flow_runs", json={"flow_name": flow, "tags": [tag] if i % 2 else []})
            ).json()["id"]
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"flow_name": flow, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/flow_runs", params=params)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created)), "newest first, each run once"
    tagged = (await api.get("/api/flow_runs", params={"tag": tag})).json()["items"]
    assert len(tagged) == 3
    scheduled = (await api.get("/api/flow_runs", params={"flow_name": flow, "state": "SCHEDULED"})).json()[
        "items"
    ]
    assert len(scheduled) == 7
    assert (await api.get("/api/flow_runs", params={"cursor": "garbage"})).status_code == 422


async def test_task_run_states_and_logs_round_trip(api: httpx.AsyncClient) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "with tasks"})).json()
    task_id = str(uuid.uuid4())
    info = {
        "id": task_id,
        "flow_run_id": run["id"],
        "name": "extract-0",
        "task_key": "extract",
        "tags": ["io"],
    }
    reports = [
        {"task_run": info, "state": s.model_dump(mode="json"), "version": v}
        for v, s in enumerate((Pending(), Running(), Completed()), start=1)
    ]
    assert (await api.post("/api/task_runs/states", json={"reports": reports})).status_code == 202
    # a redelivery stores nothing twice
    again = await api.post("/api/task_runs/states", json={"reports": reports})
    assert again.json() == {"stored": 0}
    task_runs = (await api.get("/api/task_runs", params={"flow_run_id": run["id"]})).json()["items"]
    assert [(t["id"], t["state"]["type"], t["tags"], t["run_count"]) for t in task_runs] == [
        (task_id, "COMPLETED", ["io"], 1)
    ]
    states = (await api.get(f"/api/task_runs/{task_id}/states")).json()
    assert [s["name"] for s in states] == ["Pending", "Running", "Completed"]

    logs = [{"flow_run_id": run["id"], "message": f"line {i}", "level": 20} for i in range(5)]
    assert (await api.post("/api/logs", json={"logs": logs})).status_code == 202
    page = (await api.get("/api/logs", params={"flow_run_id": run["id"], "limit": 3})).json()
    rest = (
        await api.get("/api/logs", params={"flow_run_id": run["id"], "cursor": page["next_cursor"]})
    ).json()
    assert [r["message"] for r in page["items"] + rest["items"]] == [f"line {i}" for i in range(5)]


async def test_logs_are_read_in_the_order_of_their_timestamps(api: httpx.AsyncClient) -> None:
    """Batches arrive in any order (the final state line before the captured output): a run's
    logs read back ordered by when each was written, across pages."""
    run = (await api.post("/api/flow_runs", json={"flow_name": "ordered-logs"})).json()
    base = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def at(seconds: float, message: str) -> dict[str, object]:
        moment = (base + timedelta(seconds=seconds)).isoformat()
        return {"flow_run_id": run["id"], "message": message, "level": 20, "timestamp": moment}

    await api.post("/api/logs", json={"logs": [at(9, "Finished in state Completed()")]})
    await api.post("/api/logs", json={"logs": [at(2.000001, "printed b"), at(1, "printed a")]})
    await api.post("/api/logs", json={"logs": [at(2.000001, "printed c"), at(0, "Created flow run")]})
    page = (await api.get("/api/logs", params={"flow_run_id": run["id"], "limit": 2})).json()
    messages = [r["message"] for r in page["items"]]
    while page["items"]:
        page = (
            await api.get(
                "/api/logs", params={"flow_run_id": run["id"], "limit": 2, "cursor": page["next_cursor"]}
            )
        ).json()
        messages += [r["message"] for r in page["items"]]
    assert messages == [
        "Created flow run",
        "printed a",
        "printed b",  # same time as c: in the order they arrived
        "printed c",
        "Finished in state Completed()",
    ]
    bad = await api.get("/api/logs", params={"flow_run_id": run["id"], "cursor": "nope"})
    assert bad.status_code == 422


async def test_log_stream_follows_until_the_run_ends(api: httpx.AsyncClient) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "streamed"})).json()
    await api.post("/api/logs", json={"logs": [{"flow_run_id": run["id"], "message": "hello"}]})
    await api.post(f"/api/flow_runs/{run['id']}/set_state", json={"state": Running().model_dump(mode="json")})
    await api.post(
        f"/api/flow_runs/{run['id']}/set_state", json={"state": Completed().model_dump(mode="json")}
    )
    async with api.stream("GET", "/api/logs/stream", params={"flow_run_id": run["id"]}) as response:
        text = "".join([chunk async for chunk in response.aiter_text()])
    assert '"message":"hello"' in text
    assert "event: end" in text


async def test_openapi_document_is_served_and_every_reference_resolves(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/openapi.json")).json()
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    defined = spec["components"]["schemas"]
    assert {"/api/flow_runs", "/api/task_runs/states", "/api/logs", "/api/deployments"} <= set(spec["paths"])
    assert [r for r in refs if r.removeprefix("#/components/schemas/") not in defined] == []


async def test_task_runs_are_listed_in_the_order_the_client_reported_them(api: httpx.AsyncClient) -> None:
    run = (await api.post("/api/flow_runs", json={"flow_name": "ordered tasks"})).json()
    from datetime import timedelta

    from baton_schemas import utcnow

    start = utcnow()
    reports = []
    for i in range(5):  # one batch, deliberately not in order
        state = Pending().model_copy(update={"timestamp": start + timedelta(milliseconds=10 * (4 - i))})
        info = {"id": str(uuid.uuid4()), "flow_run_id": run["id"], "name": f"t-{4 - i}", "task_key": "t"}
        reports.append({"task_run": info, "state": state.model_dump(mode="json"), "version": 1})
    assert (await api.post("/api/task_runs/states", json={"reports": reports})).status_code == 202
    items = (await api.get("/api/task_runs", params={"flow_run_id": run["id"]})).json()["items"]
    assert [t["name"] for t in items] == [f"t-{i}" for i in range(5)]
    bad = await api.post(
        "/api/task_runs/states", json={"reports": [{"task_run": {}, "state": {}, "version": 0}]}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][0] == "body"
