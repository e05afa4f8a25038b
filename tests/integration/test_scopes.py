"""Scopes separate running code from changing it; every change is audited with its key.

Each route is called with a key of each scope: the ones it names are let through (whatever the
answer then is: 2xx, 404, 409...), the others get 403. An admin key is let through everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from baton_schemas.states import Completed, Running
from baton_server.context import ServerContext

from ..support.waiting import eventually

SCOPES = ("read", "events", "run", "worker", "deploy", "admin")


@dataclass
class World:
    pool: str
    deployment_id: str
    run_id: str


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def world(api: httpx.AsyncClient, api_keys: dict[str, str]) -> AsyncIterator[World]:
    admin = bearer(api_keys["admin"])
    pool = f"scoped-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": pool}, headers=admin)).status_code == 201
    deployment = await api.post(
        "/api/deployments",
        json={"name": "d", "flow_name": f"flow-{pool}", "entrypoint": "f.py:f", "work_pool_name": pool},
        headers=admin,
    )
    assert deployment.status_code == 201, deployment.text
    run = await api.post(f"/api/deployments/{deployment.json()['id']}/runs", json={}, headers=admin)
    assert run.status_code == 201, run.text
    yield World(pool, deployment.json()["id"], run.json()["id"])


def _calls(w: World) -> list[tuple[str, str, dict[str, Any] | None, set[str]]]:
    """(method, path, JSON body, the scopes that may make the call)."""
    nowhere = uuid.uuid4()
    task_report = {
        "task_run": {"id": str(uuid.uuid4()), "flow_run_id": w.run_id, "name": "t", "task_key": "t"},
        "state": Running().model_dump(mode="json"),
        "version": 1,
    }
    return [
        ("GET", "/api/flow_runs", None, {"read"}),
        ("GET", f"/api/flow_runs/{w.run_id}", None, {"read", "run", "worker"}),
        ("GET", f"/api/flow_runs/{w.run_id}/states", None, {"read", "run", "worker"}),
        ("POST", "/api/flow_runs", {"flow_name": "ad hoc"}, {"run", "worker"}),
        ("POST", "/api/flow_runs", {"flow_name": "f", "deployment_id": w.deployment_id}, {"run"}),
        ("POST", f"/api/flow_runs/{nowhere}/cancel", None, {"run"}),
        (
            "POST",
            f"/api/flow_runs/{nowhere}/set_state",
            {"state": Running().model_dump(mode="json")},
            {"worker", "run"},
        ),
        ("POST", "/api/flow_runs/heartbeat", {"flow_run_ids": []}, {"worker"}),
        ("POST", "/api/logs", {"logs": [{"flow_run_id": w.run_id, "message": "hi"}]}, {"worker"}),
        ("POST", "/api/task_runs/states", {"reports": [task_report]}, {"worker"}),
        ("GET", "/api/logs", None, {"read"}),
        ("POST", "/api/flows", {"name": "registered"}, {"run", "worker", "deploy"}),
        ("GET", "/api/flows", None, {"read"}),
        ("GET", f"/api/deployments/{w.deployment_id}", None, {"read", "run", "deploy"}),
        ("GET", "/api/deployments", None, {"read"}),
        (
            "POST",
            "/api/deployments",
            {"name": "d2", "flow_name": "f2", "entrypoint": "f.py:f", "work_pool_name": w.pool},
            {"deploy"},
        ),
        ("DELETE", f"/api/deployments/{nowhere}", None, {"deploy"}),
        ("POST", f"/api/deployments/{w.deployment_id}/runs", {}, {"run"}),
        ("GET", f"/api/deployments/{nowhere}/schedules", None, {"read", "run", "deploy"}),
        ("GET", f"/api/deployments/{nowhere}/schedules/upcoming", None, {"read", "run", "deploy"}),
        ("POST", f"/api/deployments/{nowhere}/schedules/cron-1/pause", None, {"deploy"}),
        ("POST", f"/api/deployments/{nowhere}/schedules/cron-1/resume", None, {"deploy"}),
        ("DELETE", f"/api/deployments/{nowhere}/schedules/cron-1", None, {"deploy"}),
        ("POST", f"/api/deployments/{nowhere}/pause", None, {"deploy"}),
        ("POST", f"/api/deployments/{nowhere}/resume", None, {"deploy"}),
        ("POST", "/api/work_pools", {"name": f"{w.pool}-x"}, {"deploy"}),
        ("GET", f"/api/work_pools/{w.pool}", None, {"read", "worker", "deploy"}),
        ("GET", f"/api/work_pools/{w.pool}/queues", None, {"read", "worker", "deploy"}),
        ("PATCH", f"/api/work_pools/{w.pool}", {"description": "changed"}, {"deploy"}),
        ("DELETE", "/api/work_pools/nowhere-at-all", None, {"deploy"}),
        ("GET", "/api/workers", None, {"read"}),
        ("GET", "/api/variables", None, {"read", "run", "worker", "deploy"}),
        ("GET", "/api/variables/nowhere", None, {"read", "run", "worker", "deploy"}),
        ("POST", "/api/variables", {"name": f"v-{w.pool}", "value": 1}, {"deploy"}),
        ("PUT", f"/api/variables/v-{w.pool}", {"value": 2}, {"deploy"}),
        ("DELETE", "/api/variables/nowhere", None, {"deploy"}),
        (
            "POST",
            "/api/artifacts",
            {"type": "markdown", "data": "hi", "flow_run_id": w.run_id},
            {"run", "worker"},
        ),
        ("GET", "/api/artifacts", None, {"read"}),
        ("GET", f"/api/artifacts/{nowhere}", None, {"read"}),
        ("DELETE", "/api/artifacts/key/nowhere", None, {"deploy"}),
        ("GET", "/api/api_keys", None, set()),
        ("GET", "/api/audit", None, set()),
    ]


async def test_each_route_lets_through_exactly_the_scopes_it_names(
    api: httpx.AsyncClient, api_keys: dict[str, str], world: World
) -> None:
    wrong: list[str] = []
    for method, path, body, allowed in _calls(world):
        for scope in SCOPES:
            response = await api.request(method, path, json=body, headers=bearer(api_keys[scope]))
            let_through = response.status_code != 403
            should = scope in allowed or scope == "admin"
            if let_through != should or response.status_code >= 500:
                wrong.append(f"{scope} {method} {path}: {response.status_code} {response.text[:200]}")
    assert wrong == []


async def test_a_403_says_what_the_key_has_and_what_is_needed(
    api: httpx.AsyncClient, api_keys: dict[str, str], world: World
) -> None:
    refused = await api.post(
        "/api/deployments/00000000-0000-0000-0000-000000000000/runs",
        json={},
        headers=bearer(api_keys["deploy"]),
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this key has scope deploy; this needs run"


async def test_job_variables_on_a_run_need_deploy_as_well(
    api: httpx.AsyncClient, api_keys: dict[str, str], world: World, ctx: ServerContext
) -> None:
    """Job variables decide what a worker executes (a process pool's `command`): a run key alone
    cannot set them; one with run and deploy can."""
    from baton_server.api.auth import Scope, create_api_key

    body = {"job_variables": {"env": {"GREETING": "hi"}}}
    path = f"/api/deployments/{world.deployment_id}/runs"
    refused = await api.post(path, json=body, headers=bearer(api_keys["run"]))
    assert refused.status_code == 403
    assert (
        refused.json()["detail"] == "setting job variables needs a key with scope deploy (this one has run)"
    )
    async with ctx.pool.acquire() as conn:
        _, both = await create_api_key(conn, name="tests-run-deploy", scopes={Scope.RUN, Scope.DEPLOY})
    assert (await api.post(path, json=body, headers=bearer(both))).status_code == 201
    ad_hoc = await api.post(
        "/api/flow_runs",
        json={"flow_name": "f", "work_pool_name": world.pool, "job_variables": {"command": "rm -rf /"}},
        headers=bearer(api_keys["worker"]),
    )
    assert ad_hoc.status_code == 403


async def test_force_needs_admin_and_is_audited(
    api: httpx.AsyncClient, api_keys: dict[str, str], world: World
) -> None:
    body = {"state": Completed().model_dump(mode="json"), "force": True}
    path = f"/api/flow_runs/{world.run_id}/set_state"
    worker = await api.post(path, json=body, headers=bearer(api_keys["worker"]))
    assert worker.status_code == 403
    assert worker.json()["detail"].startswith("force (skipping the rules) needs a key with scope admin")
    assert (await api.post(path, json=body, headers=bearer(api_keys["admin"]))).json()["verdict"] == "ACCEPT"

    async def recorded() -> list[dict[str, Any]]:
        page = await api.get(
            "/api/audit", params={"key_name": "tests-admin"}, headers=bearer(api_keys["admin"])
        )
        return [e for e in page.json()["items"] if e["path"] == path]

    [entry] = await eventually(recorded, what="the forced change in the audit log")
    assert entry["detail"] == {"state": "Completed", "force": True}


async def test_every_change_is_audited_with_its_key_and_reports_are_not(
    api: httpx.AsyncClient, api_keys: dict[str, str], world: World
) -> None:
    admin = bearer(api_keys["admin"])
    pool = f"audited-{uuid.uuid4().hex[:8]}"
    created = await api.post("/api/work_pools", json={"name": pool}, headers=bearer(api_keys["deploy"]))
    assert created.status_code == 201
    heartbeat = await api.post(
        "/api/flow_runs/heartbeat", json={"flow_run_ids": []}, headers=bearer(api_keys["worker"])
    )
    assert heartbeat.status_code == 202
    logs = {"logs": [{"flow_run_id": world.run_id, "message": "not a change"}]}
    assert (await api.post("/api/logs", json=logs, headers=bearer(api_keys["worker"]))).status_code == 202
    refused = await api.post("/api/work_pools", json={"name": f"{pool}-no"}, headers=bearer(api_keys["read"]))
    assert refused.status_code == 403

    async def entries() -> list[dict[str, Any]]:
        page = (await api.get("/api/audit", params={"limit": 1000}, headers=admin)).json()["items"]
        return (
            page
            if any(e["path"] == "/api/work_pools" and e["key_name"] == "tests-deploy" for e in page)
            else []
        )

    page = await eventually(entries, what="the pool's creation in the audit log")
    mine = [e for e in page if e["key_name"] == "tests-deploy" and e["path"] == "/api/work_pools"]
    assert mine[0]["method"] == "POST" and mine[0]["status"] == 201 and mine[0]["origin"] == "api"
    assert mine[0]["route"] == "/api/work_pools"
    reports = {"/api/flow_runs/heartbeat", "/api/logs", "/api/task_runs/states"}
    assert not [e for e in page if e["path"] in reports], "reports are not audit events"
    assert not [e for e in page if e["key_name"] == "tests-read"], "refused requests changed nothing"
    assert (await api.get("/api/audit", headers=bearer(api_keys["read"]))).status_code == 403


async def test_keys_are_made_and_revoked_through_the_api(
    api: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    admin = bearer(api_keys["admin"])
    made = await api.post(
        "/api/api_keys", json={"name": "made-here", "scopes": ["run", "read"]}, headers=admin
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["scopes"] == ["read", "run"] and key["secret"].startswith(key["prefix"])
    assert (await api.get("/api/flow_runs", headers=bearer(key["secret"]))).status_code == 200
    bad = await api.post("/api/api_keys", json={"name": "bad", "scopes": ["superuser"]}, headers=admin)
    assert bad.status_code == 422 and "unknown scope 'superuser'" in bad.json()["detail"]

    assert (await api.delete(f"/api/api_keys/{key['id']}", headers=admin)).status_code == 204
    # this process forgets it at once (others within twice BATON_API_KEY_REFRESH_SECONDS)
    assert (await api.get("/api/flow_runs", headers=bearer(key["secret"]))).status_code == 401
    listed = (await api.get("/api/api_keys", params={"include_revoked": True}, headers=admin)).json()
    [row] = [k for k in listed if k["id"] == key["id"]]
    assert row["revoked"] and row["revoked_at"] and "secret" not in row
    assert (await api.delete(f"/api/api_keys/{key['id']}", headers=admin)).status_code == 404


async def test_openapi_names_the_scopes_of_each_operation(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/openapi.json")).json()
    deploy = spec["paths"]["/api/deployments"]["post"]
    assert deploy["x-baton-scopes"] == ["deploy"] and deploy["security"] == [{"bearer": []}]
    assert spec["paths"]["/api/flow_runs/{run_id}"]["get"]["x-baton-scopes"] == ["read", "run", "worker"]
    assert (
        "Needs a key with scope `run`"
        in spec["paths"]["/api/flow_runs/{run_id}/cancel"]["post"]["description"]
    )
