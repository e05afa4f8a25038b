"""Automations through the API: create, read, pause, resume, delete; bad input refused with a
422 naming the field; changing needs `deploy`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from baton_server.context import ServerContext


def _body(name: str, deployment: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"expect": ["order.created"]},
        "actions": [
            {"type": "run-deployment", "deployment": deployment["id"], "parameters": {"order_id": "x"}}
        ],
        **fields,
    }


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["detail"]]


async def test_create_read_pause_resume_delete(api: httpx.AsyncClient, deployment: dict[str, Any]) -> None:
    name = f"a-{uuid.uuid4().hex[:8]}"
    created = await api.post("/api/automations", json=_body(name, deployment))
    assert created.status_code == 201, created.text
    assert (await api.post("/api/automations", json=_body(name, deployment))).status_code == 409
    read = (await api.get(f"/api/automations/{name}")).json()
    assert read["enabled"] and read["trigger"]["type"] == "event"
    assert name in [a["name"] for a in (await api.get("/api/automations")).json()]
    paused = (await api.post(f"/api/automations/{name}/pause")).json()
    assert not paused["enabled"] and paused["revision"] > read["revision"]
    assert (await api.post(f"/api/automations/{name}/resume")).json()["enabled"]
    replaced = await api.put(f"/api/automations/{name}", json=_body(name, deployment, description="changed"))
    assert replaced.json()["id"] == read["id"] and replaced.json()["description"] == "changed"
    assert (await api.get(f"/api/automations/{name}/firings")).json() == {"items": []}
    assert (await api.delete(f"/api/automations/{name}")).status_code == 204
    assert (await api.get(f"/api/automations/{name}")).status_code == 404


async def test_bad_input_is_refused_naming_the_field(
    api: httpx.AsyncClient, deployment: dict[str, Any]
) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    unknown = _body(name, deployment, actions=[{"type": "launch-rocket"}])
    assert _locs(await api.post("/api/automations", json=unknown))[0][:3] == ["body", "actions", 0]

    template = _body(name, deployment)
    template["actions"][0]["parameters"] = {"order_id": "{{ event.resource['x' }}"}
    assert _locs(await api.post("/api/automations", json=template)) == [
        ["body", "actions", 0, "parameters", "order_id"]
    ]

    missing = _body(name, deployment)
    missing["actions"][0]["deployment"] = "no-such-flow/no-such-deployment"
    response = await api.post("/api/automations", json=missing)
    assert _locs(response) == [["body", "actions", 0, "deployment"]]
    assert "does not exist" in response.text

    proactive = _body(name, deployment, trigger={"posture": "Proactive", "expect": ["x"], "within": "1s"})
    response = await api.post("/api/automations", json=proactive)
    assert _locs(response)[0][:2] == ["body", "trigger"] and "within" in response.text

    assert (await api.get(f"/api/automations/{name}")).status_code == 404  # nothing was made


async def test_changing_needs_deploy_reading_needs_read(
    api: httpx.AsyncClient, api_keys: dict[str, str], deployment: dict[str, Any], ctx: ServerContext
) -> None:
    name = f"s-{uuid.uuid4().hex[:8]}"
    read_only = {"Authorization": f"Bearer {api_keys['read']}"}
    refused = await api.post("/api/automations", json=_body(name, deployment), headers=read_only)
    assert refused.status_code == 403
    assert (await api.post("/api/automations", json=_body(name, deployment))).status_code == 201
    assert (await api.get(f"/api/automations/{name}", headers=read_only)).status_code == 200
    events_key = {"Authorization": f"Bearer {api_keys['events']}"}
    assert (await api.get(f"/api/automations/{name}", headers=events_key)).status_code == 403
    assert (await api.delete(f"/api/automations/{name}", headers=read_only)).status_code == 403


async def test_deployment_triggers_become_automations_updated_in_place(
    api: httpx.AsyncClient, deployment: dict[str, Any]
) -> None:
    body = {
        k: deployment[k] for k in ("name", "flow_name", "entrypoint", "work_pool_name", "parameter_schema")
    }
    trigger = {"expect": ["order.created"], "parameters": {"order_id": "{{ event.id }}"}}
    first = await api.post("/api/deployments", json={**body, "triggers": [trigger]})
    assert first.status_code == 200, first.text
    prefix = f"{deployment['flow_name']}/{deployment['name']}:"
    mine = [a for a in (await api.get("/api/automations")).json() if a["name"].startswith(prefix)]
    assert len(mine) == 1 and mine[0]["deployment_id"] == deployment["id"]
    assert mine[0]["actions"][0]["deployment"] == deployment["id"]
    changed = {**trigger, "threshold": 3, "within": "1m"}
    assert (await api.post("/api/deployments", json={**body, "triggers": [changed]})).status_code == 200
    again = [a for a in (await api.get("/api/automations")).json() if a["name"].startswith(prefix)]
    assert [a["id"] for a in again] == [mine[0]["id"]]
    assert again[0]["trigger"]["threshold"] == 3 and again[0]["trigger"]["within"] == 60
    bad = {**trigger, "parameters": {"order_id": "{% if %}"}}
    response = await api.post("/api/deployments", json={**body, "triggers": [bad]})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][:3] == ["body", "triggers", 0]
    assert (await api.post("/api/deployments", json={**body, "triggers": []})).status_code == 200
    assert not [a for a in (await api.get("/api/automations")).json() if a["name"].startswith(prefix)]
