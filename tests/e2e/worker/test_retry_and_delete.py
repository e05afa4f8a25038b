"""`baton flow-run retry` and `delete` against a real server and worker."""

from __future__ import annotations

import subprocess
import textwrap

from ...support.processes import BATON
from .conftest import Setup

FLAKY = """
from pathlib import Path

from baton import flow


@flow
def flaky(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("the first attempt fails")
    return "ok"
"""


def baton(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATON, *args], env=setup.server.client_env(), capture_output=True, text=True, timeout=60
    )


def test_retry_runs_an_ended_deployment_run_again_and_delete_removes_it(setup: Setup) -> None:
    (setup.folder / "flaky.py").write_text(textwrap.dedent(FLAKY))
    deployment = setup.deployment("flaky.py:flaky", parameters={"marker": str(setup.folder / "marker")})
    setup.start_worker()
    # generated names repeat across the session's runs: a name of its own, to retry it by
    run = setup.api.run(deployment, name=f"flaky-{setup.suffix}")
    assert setup.api.wait_state(run["id"])["type"] == "FAILED"

    busy = setup.api.run(deployment, scheduled_time="2999-01-01T00:00:00Z")  # not ended
    refused = baton(setup, "flow-run", "retry", busy["id"])
    assert refused.returncode == 1 and "has not ended (scheduled): nothing to retry" in refused.stderr

    retried = baton(setup, "flow-run", "retry", run["name"])
    assert retried.returncode == 0, retried.stderr
    assert "AwaitingRetry (retried)" in retried.stdout
    final = setup.api.wait_state(run["id"], "COMPLETED", timeout=60)
    assert final["type"] == "COMPLETED"
    stored = setup.api.read_run(run["id"])
    assert stored["run_count"] == 2
    names = [s["name"] for s in setup.api.states(run["id"])]
    assert names[names.index("Failed") :] == ["Failed", "AwaitingRetry", "Pending", "Retrying", "Completed"]

    deleted = baton(setup, "flow-run", "delete", run["id"][:12], "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert setup.api.http.get(f"/flow_runs/{run['id']}").status_code == 404
    kept = baton(setup, "flow-run", "delete", busy["id"], "--yes")
    assert kept.returncode == 1 and "has not ended (scheduled): cancel it first" in kept.stderr
