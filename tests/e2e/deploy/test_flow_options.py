"""A deployment keeps its flow's own options: `@flow(retries=..., timeout_seconds=...,
log_prints=...)` hold for deployment runs as for local calls, and baton.yaml overrides them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ...support.processes import BATON
from ..conftest import LiveServer
from ..worker.conftest import wait_until
from .conftest import PROCESS_TIMEOUT, Project

FLAKY = '''
import time
from pathlib import Path

from baton import flow


@flow(name="{flow}", retries=1, timeout_seconds=60, log_prints=True, version="3")
def flaky(marker: str, sleep: float = 0.0) -> str:
    """Fails its first attempt."""
    time.sleep(sleep)
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("the first attempt fails")
    print("the second attempt works")
    return "ok"
'''


@pytest.fixture
def worker(project: Project, live_server: LiveServer) -> Iterator[subprocess.Popen[str]]:
    project.baton("work-pool", "create", project.pool, "--type", "process").ok()
    env = live_server.client_env(amqp=True, BATON_HOME=str(project.path / ".home"))
    process = subprocess.Popen(
        [BATON, "worker", "start", "--pool", project.pool],
        env=env,
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield process
    process.terminate()
    process.wait(PROCESS_TIMEOUT)


def _final(project: Project, run_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = project.get(f"/flow_runs/{run_id}")
        return run if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    return wait_until(ended, timeout=PROCESS_TIMEOUT, interval=0.1, what=f"run {run_id} to end")


def _run(project: Project, deployment: str, **parameters: Any) -> dict[str, Any]:
    deployment_id = project.stored(deployment)["id"]
    created = project.http.post(f"/deployments/{deployment_id}/runs", json={"parameters": parameters})
    created.raise_for_status()
    return _final(project, created.json()["id"])


def test_deployment_runs_keep_the_flows_retries_timeout_and_log_prints(
    project: Project, worker: subprocess.Popen[str]
) -> None:
    project.write("flows/flaky.py", FLAKY.format(flow=project.flow))
    entry = {"entrypoint": "flows/flaky.py:flaky", "work_pool": {"name": project.pool}}
    strict = {"retry_policy": {"retries": 0}, "timeout_seconds": 1, "log_prints": False}
    project.write_config({"deployments": [{"name": "prod", **entry}, {"name": "strict", **entry, **strict}]})
    project.baton("deploy").ok()

    # Flow.deploy takes the same defaults (Flow.serve deploys through it: tests/e2e/worker/test_serve.py)
    project.python(f"from flows.flaky import flaky\nflaky.deploy('py', {project.pool!r})").ok()
    for name in ("prod", "py"):
        stored = project.stored(name)
        assert stored["retry_policy"] == {"retries": 1, "retry_delay_seconds": 0.0}, name
        assert (stored["timeout_seconds"], stored["log_prints"], stored["version"]) == (60, True, "3")
        assert stored["description"] == "Fails its first attempt."

    run = _run(project, "prod", marker=str(project.path / "prod.marker"))
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["run_count"] == 2  # @flow(retries=1): retried once by the server
    messages = [log["message"] for log in project.get("/logs", flow_run_id=run["id"])["items"]]
    assert "the second attempt works" in messages  # log_prints=True

    # baton.yaml's retry policy and timeout win over the flow's
    run = _run(project, "strict", marker=str(project.path / "strict.marker"), sleep=5)
    assert (run["state"]["type"], run["state"]["name"]) == ("FAILED", "TimedOut"), run["state"]
    assert run["run_count"] == 1
