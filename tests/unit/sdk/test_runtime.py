"""`baton.runtime` (the run in progress) and `get_client()`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

import baton
from baton import flow, get_client, task
from baton._deployments import NotConfigured
from baton._transport.http import BatonClient, SyncBatonClient
from baton.runtime import deployment, flow_run, task_run


def test_runtime_tells_the_run_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATON_FLOW_RUN_ID", raising=False)
    monkeypatch.delenv("BATON_DEPLOYMENT_ID", raising=False)

    @task(tags=["io"])
    def inside(x: int) -> dict[str, Any]:
        return {
            "task": (
                task_run.name,
                task_run.task_name,
                task_run.parameters,
                task_run.tags,
                task_run.run_count,
            ),
            "flow": (flow_run.name, flow_run.id),
        }

    @flow(name="introspective", flow_run_name="look-{n}", tags=["t"])
    def introspective(n: int) -> dict[str, Any]:
        seen = inside(n)
        seen["outer"] = (flow_run.name, flow_run.flow_name, flow_run.parameters, flow_run.tags, task_run.id)
        seen["flow_id"] = flow_run.id
        seen["deployment"] = (deployment.id, deployment.name)
        return seen

    seen = introspective(3)
    assert seen["task"] == ("inside-0", "inside", {"x": 3}, ["io", "t"], 1)
    assert seen["outer"] == ("look-3", "introspective", {"n": 3}, ["t"], None)
    assert seen["flow"] == ("look-3", seen["flow_id"]) and isinstance(seen["flow_id"], UUID)
    assert seen["deployment"] == (None, None)  # called, not deployed
    assert (flow_run.id, task_run.name, flow_run.parameters, flow_run.tags) == (None, None, {}, [])
    assert baton.runtime.flow_run is flow_run


def test_a_deployment_runs_process_knows_its_run_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id, deployment_id = UUID(int=7), UUID(int=8)
    monkeypatch.setenv("BATON_FLOW_RUN_ID", str(run_id))
    monkeypatch.setenv("BATON_DEPLOYMENT_ID", str(deployment_id))
    monkeypatch.setenv("BATON_DEPLOYMENT_NAME", "prod")
    assert (flow_run.id, deployment.id, deployment.name) == (run_id, deployment_id, "prod")


async def test_get_client_uses_the_configured_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_API_URL", "http://127.0.0.1:9/api")
    async with get_client() as client:
        assert isinstance(client, BatonClient)
    with get_client(sync_client=True) as sync:
        assert isinstance(sync, SyncBatonClient)
    monkeypatch.delenv("BATON_API_URL")
    with pytest.raises(NotConfigured):
        get_client()
