"""A deployment run through `baton worker start`: its states, its logs, the worker as listed."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from ...support.processes import BATON
from .conftest import Setup, wait_until


@pytest.mark.parametrize("prestart", [0, 1], ids=["fresh-process", "prestarted-process"])
def test_a_deployment_run_goes_scheduled_pending_running_completed(setup: Setup, prestart: int) -> None:
    deployment = setup.deployment("flows.py:hello")
    worker = setup.start_worker("--prestart", str(prestart))
    run = setup.api.run(deployment, parameters={"name": "Ford"})

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "COMPLETED", final
    history = [(s["type"], s["name"]) for s in setup.api.states(run["id"])]
    assert history == [
        ("SCHEDULED", "Scheduled"),
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]
    stored = setup.api.read_run(run["id"])
    assert stored["worker_id"] is None  # released once ended
    assert "Claimed flow run" in worker.log()


def test_the_process_output_goes_to_the_worker_log_not_the_runs_logs(setup: Setup) -> None:
    """Without log_prints, print() is not a run log, through a worker as in a local run."""
    deployment = setup.deployment("flows.py:hello")
    worker = setup.start_worker()
    run = setup.api.run(deployment, parameters={"name": "Zaphod"})
    setup.api.wait_state(run["id"], "COMPLETED")

    def shipped() -> list[tuple[str, str]] | None:
        logs = [(log["message"], log["name"]) for log in setup.api.logs(run["id"])]
        return logs if ("Finished in state Completed()", "baton.flow_runs") in logs else None

    logs = wait_until(shipped, what="the run's final log line")
    assert not [message for message, _ in logs if "Zaphod" in message], logs
    assert [name for message, name in logs if message == "Finished in state Completed()"] == [
        "baton.flow_runs"
    ]
    worker.wait_log("and from stderr, Zaphod")  # the worker's own log has the raw output
    assert "hello from stdout, Zaphod" in worker.log()


def test_a_log_prints_print_is_shipped_once(setup: Setup) -> None:
    deployment = setup.deployment("flows.py:chatty")
    worker = setup.start_worker()
    run = setup.api.run(deployment, parameters={"name": "Trillian"})
    setup.api.wait_state(run["id"], "COMPLETED")

    def shipped() -> list[str] | None:
        names = [log["name"] for log in setup.api.logs(run["id"])]
        return names if "baton.flow_runs" in names and len(names) >= 4 else None

    wait_until(shipped, what="the run's logs")
    printed = [log for log in setup.api.logs(run["id"]) if "printed and logged, Trillian" in log["message"]]
    assert [log["name"] for log in printed] == ["baton.flow_runs"]
    assert "printed and logged, Trillian" in worker.log()  # still on the worker's console


def test_worker_ls_shows_the_worker_online_with_its_runs(setup: Setup) -> None:
    setup.start_worker("--limit", "3", name=f"lister-{setup.suffix}")
    env = setup.server.client_env()

    def listed() -> list[dict[str, object]]:
        done = subprocess.run(
            [BATON, "worker", "ls", "--pool", setup.pool, "--json"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return [w for w in json.loads(done.stdout) if w["name"] == f"lister-{setup.suffix}"]

    [worker] = wait_until(listed, what="the worker in `baton worker ls`")
    assert worker["online"] is True
    assert worker["pool_name"] == setup.pool
    assert worker["slots"] == 3

    table = subprocess.run([BATON, "worker", "ls"], env=env, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if f"lister-{setup.suffix}" in line)
    assert setup.pool in line and "online" in line


def test_a_worker_starts_a_missing_pool_and_serves_it(setup: Setup) -> None:
    setup.pool = f"fresh-{setup.suffix}"  # not created by the fixture
    worker = setup.start_worker()
    deployment = setup.deployment("flows.py:hello")
    run = setup.api.run(deployment)
    assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
    assert "Creating work pool" in worker.log()


def test_a_run_scheduled_for_later_starts_at_its_time(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts)})
    setup.start_worker()
    when = datetime.now(UTC) + timedelta(seconds=3)

    run = setup.api.run(deployment, scheduled_time=when.isoformat())

    assert setup.api.state_of(run["id"])["type"] == "SCHEDULED"
    assert setup.api.wait_state(run["id"], timeout=30)["type"] == "COMPLETED"
    [(_, _, started)] = setup.records(starts)
    assert started >= when.timestamp() - 0.5  # the server's tolerance for clocks
