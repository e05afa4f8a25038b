"""What goes wrong ends readable, never stuck: bad input, dying processes, a killed worker."""

from __future__ import annotations

import signal
import subprocess
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from .conftest import Setup, process_alive, wait_until

BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "missing entrypoint file": (
        {"entrypoint": "nowhere.py:record"},
        "entrypoint file 'nowhere.py' not found",
    ),
    "missing function": (
        {"entrypoint": "flows.py:no_such_flow"},
        "'flows.py' has no 'no_such_flow'",
    ),
    "import error": (
        {"entrypoint": "broken.py:main"},
        "could not be imported: ModuleNotFoundError: No module named 'not_installed_anywhere'",
    ),
    "syntax error": (
        {"entrypoint": "garbled.py:main"},
        "could not be imported: SyntaxError",
    ),
    "failing pull step": (
        {
            "entrypoint": "flows.py:hello",
            "pull_steps": [{"kind": "run_shell_script", "script": "echo 'no disk left' >&2; exit 3"}],
        },
        "pull step 1 (run_shell_script) failed: the script (echo 'no disk left' >&2; exit 3) exited "
        "with code 3: no disk left",
    ),
    "failing git clone": (
        {
            "entrypoint": "flows.py:hello",
            "pull_steps": [{"kind": "git_clone", "repository": "/no/such/repo.git"}],
        },
        "pull step 1 (git_clone) failed: git clone of /no/such/repo.git exited with code 128: fatal: "
        "repository '/no/such/repo.git' does not exist",
    ),
    "bad parameters": (
        {"entrypoint": "flows.py:record", "parameters": {"path": "x", "sleep": "not a number"}},
        "Invalid parameters for flow 'record'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_ends_failed_with_the_reason(setup: Setup, case: str) -> None:
    (setup.folder / "broken.py").write_text("import not_installed_anywhere\n")
    (setup.folder / "garbled.py").write_text("def main(:\n")
    fields, reason = BAD_INPUTS[case]
    deployment = setup.deployment(**{"enforce_parameter_schema": False, **fields})
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "FAILED", final
    assert reason in final["message"], final["message"]


def test_a_process_that_exits_without_a_final_state_makes_the_run_crashed(setup: Setup) -> None:
    deployment = setup.deployment("flows.py:exits", parameters={"code": 7})
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "CRASHED", final
    assert final["message"] == "the flow run's process exited with code 7: about to leave without a word"


def test_a_crashed_runs_message_ends_with_the_last_lines_of_its_output(setup: Setup) -> None:
    deployment = setup.deployment("flows.py:says_goodbye", parameters={"lines": 14})
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "CRASHED", final
    head, *tail = final["message"].splitlines()
    assert head == "the flow run's process exited with code 9; the last lines of its output:"
    assert tail == [f"goodbye line {n}" for n in range(4, 14)]  # the last ten


def test_a_failing_flow_is_retried_by_the_server_on_any_worker(setup: Setup) -> None:
    deployment = setup.deployment("flows.py:fails", retry_policy={"retries": 2})
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"], "FAILED", timeout=60)

    assert "this flow always fails" in final["message"]
    history = [(s["type"], s["name"]) for s in setup.api.states(run["id"])]
    assert history.count(("RUNNING", "Running")) + history.count(("RUNNING", "Retrying")) == 3
    assert history.count(("SCHEDULED", "AwaitingRetry")) == 2
    assert setup.api.read_run(run["id"])["run_count"] == 3


@pytest.mark.timeout(120)
def test_kill_9_of_a_worker_crashes_its_run_once_its_lease_expires_and_the_retry_runs_elsewhere(
    setup: Setup,
) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(
        parameters={"path": str(starts), "first_sleep": 300}, retry_policy={"retries": 1}
    )
    first = setup.start_worker()
    run = setup.api.run(deployment)
    [(_, pid, _)] = wait_until(lambda: setup.records(starts), what="the first attempt to start")
    setup.api.wait_state(run["id"], "RUNNING")
    second = setup.start_worker()
    # the Running transition leased the run for the server's default; a heartbeat shortens it
    wait_until(
        lambda: (
            setup.db.fetchval(
                "SELECT lease_expires_at - now() FROM flow_runs WHERE id = $1", uuid.UUID(run["id"])
            )
            <= timedelta(seconds=3.5)
        ),
        what="a heartbeat to bring the lease down to the worker's 3 s",
    )

    first.signal(signal.SIGKILL)
    first.wait(10)
    # no heartbeat extends it any more: the lease the run holds now is its last
    expires = setup.db.fetchval("SELECT lease_expires_at FROM flow_runs WHERE id = $1", uuid.UUID(run["id"]))

    wait_until(lambda: not process_alive(pid), timeout=5, what="the run's process to die with its worker")

    def crash() -> dict[str, Any] | None:
        return next((s for s in setup.api.states(run["id"]) if s["type"] == "CRASHED"), None)

    crashed = wait_until(
        crash,
        timeout=15,
        interval=0.1,
        what="the run to be Crashed",
    )
    assert "lease expired" in crashed["message"]
    assert datetime.fromisoformat(crashed["timestamp"]) >= expires  # not before the lease ran out
    final = setup.api.wait_state(run["id"], timeout=30)
    assert final["type"] == "COMPLETED", final
    [(_, pid1, _), (_, pid2, _)] = setup.records(starts)
    assert pid1 == pid and pid2 != pid
    assert f"Claimed flow run {run['name']!r}" in second.log()


def test_output_of_a_killed_worker_does_not_leave_its_fork_server_behind(setup: Setup) -> None:
    worker = setup.start_worker("--prestart", "2")
    helpers = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert helpers, "the fork server should be the worker's child"
    server_pid = int(helpers[0])
    forks = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True, text=True).stdout.split()
    assert len(forks) == 2

    worker.signal(signal.SIGKILL)
    worker.wait(10)

    for pid in [server_pid, *map(int, forks)]:
        wait_until(lambda pid=pid: not process_alive(pid), timeout=5, what=f"process {pid} to die")  # type: ignore[misc]
