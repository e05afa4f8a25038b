"""Pausing a run for input against a real server and worker: `pause_flow_run` waits in its
process (its lease kept alive) and returns the model it is resumed with; `baton flow-run resume`
checks the input; a pause that times out fails the run; `suspend_flow_run` frees the worker's
slot, and the resumed run is started again by a worker, its cached task not run twice."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import uuid
from datetime import datetime, timedelta

import pytest

from baton import resume_flow_run
from baton._deployments import connect

from ...support.processes import BATON
from ..router.conftest import in_every_index
from .conftest import Setup, process_alive, wait_until

PAUSING = """
import json
from pathlib import Path

from baton import RunInput, flow, pause_flow_run, suspend_flow_run, task
from baton.cache_policies import DEFAULT


class Approval(RunInput):
    approved: bool
    note: str = ""


@flow
def approve(out: str, timeout: float = 120) -> str:
    answer = pause_flow_run(wait_for_input=Approval, timeout=timeout, poll_interval=0.2)
    Path(out).write_text(answer.model_dump_json())
    return answer.note


@task(cache_policy=DEFAULT)
def count(path: str) -> int:
    target = Path(path)
    with target.open("a") as f:
        f.write("ran\\n")
    return len(target.read_text().splitlines())


@flow
def suspends(path: str, out: str) -> None:
    ran = count(path)
    word = suspend_flow_run(wait_for_input=str, timeout=120)
    Path(out).write_text(json.dumps({"ran": ran, "word": word}))
"""


def _baton(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    env = setup.server.client_env(COLUMNS="200")  # lines unwrapped
    return subprocess.run([BATON, *args], env=env, capture_output=True, text=True, timeout=60)


def _write_flows(setup: Setup) -> None:
    (setup.folder / "pausing.py").write_text(textwrap.dedent(PAUSING))


def _names(setup: Setup, run_id: str) -> list[str]:
    return [s["name"] for s in setup.api.states(run_id)]


def test_a_paused_run_waits_keeps_its_lease_and_gets_the_input_it_is_resumed_with(setup: Setup) -> None:
    _write_flows(setup)
    out = setup.folder / "approval.json"
    deployment = setup.deployment("pausing.py:approve", parameters={"out": str(out)})
    setup.start_worker()
    run = setup.api.run(deployment, name=f"approve-{setup.suffix}")
    paused = setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    assert paused["name"] == "Paused" and paused["data"]["pause"]["key"] == "pause-1"
    run_id = uuid.UUID(run["id"])

    # the worker's lease is 3 s: the reaper would crash the run, were its lease not renewed
    since = datetime.fromisoformat(paused["timestamp"])

    def renewed_past_two_leases() -> bool:
        lease = setup.db.fetchval("SELECT lease_expires_at FROM flow_runs WHERE id = $1", run_id)
        return lease is not None and lease > since + timedelta(seconds=7)

    wait_until(renewed_past_two_leases, timeout=30, what="the paused run's lease renewed")
    assert setup.api.state_of(run["id"])["type"] == "PAUSED"

    inspected = _baton(setup, "flow-run", "inspect", run["name"])
    assert inspected.returncode == 0, inspected.stderr
    assert "pause-1, waits for " in inspected.stdout and "approved (required)" in inspected.stdout

    bad = _baton(setup, "flow-run", "resume", run["name"], "--input", '{"approved": "maybe"}')
    assert bad.returncode == 1
    assert "run_input.approved: 'maybe' is not of type 'boolean'" in bad.stderr
    missing = setup.api.http.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"note": "x"}})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "run_input", "approved"]
    not_json = _baton(setup, "flow-run", "resume", run["name"], "--input", "{approved")
    assert not_json.returncode == 1 and "--input is not JSON" in not_json.stderr
    assert setup.api.state_of(run["id"])["type"] == "PAUSED"

    good = _baton(
        setup, "flow-run", "resume", run["id"][:13], "--input", '{"approved": true, "note": "ship it"}'
    )
    assert good.returncode == 0, good.stderr
    assert "(resumed)" in good.stdout
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "COMPLETED", final
    assert json.loads(out.read_text()) == {"approved": True, "note": "ship it"}
    stored = setup.api.read_run(run["id"])
    assert stored["run_count"] == 1  # resuming is the same attempt
    names = _names(setup, run["id"])
    assert names[names.index("Running") :] == ["Running", "Paused", "Running", "Completed"]

    again = setup.api.http.post(f"/flow_runs/{run['id']}/resume", json={})
    assert again.status_code == 409 and "is not paused" in again.json()["detail"]


def test_a_pause_that_times_out_fails_the_run(setup: Setup) -> None:
    _write_flows(setup)
    out = setup.folder / "never.json"
    deployment = setup.deployment("pausing.py:approve", parameters={"out": str(out), "timeout": 1})
    setup.start_worker()
    run = setup.api.run(deployment)
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "FAILED", final
    assert "paused and not resumed before its timeout" in final["message"]
    assert not out.exists()
    names = _names(setup, run["id"])
    assert names[names.index("Paused") :] == ["Paused", "Failed"]  # the process's own end adopted it
    late = setup.api.http.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"approved": True}})
    assert late.status_code == 409


def test_a_suspended_run_frees_its_worker_and_is_started_again_when_resumed(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_API_URL", setup.server.api_url)  # for the SDK in this process
    monkeypatch.setenv("BATON_API_KEY", setup.server.api_key)
    _write_flows(setup)
    counted, out = setup.folder / "count.txt", setup.folder / "suspended.json"
    suspends = setup.deployment("pausing.py:suspends", parameters={"path": str(counted), "out": str(out)})
    records = setup.deployment("flows.py:record")
    setup.start_worker("--limit", "1", BATON_RESULTS_DIR=str(setup.folder / "results"))
    run = setup.api.run(suspends)
    suspended = setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    assert suspended["name"] == "Suspended"
    row = setup.db.fetch(
        "SELECT worker_id, claim_id, lease_expires_at FROM flow_runs WHERE id = $1", uuid.UUID(run["id"])
    )[0]
    assert (row["worker_id"], row["claim_id"], row["lease_expires_at"]) == (None, None, None)

    # the worker's one slot is free: another run goes through it while this one is suspended
    other = setup.api.run(records, parameters={"path": str(setup.folder / "other.txt")})
    assert setup.api.wait_state(other["id"], timeout=60)["type"] == "COMPLETED"
    assert setup.api.state_of(run["id"])["name"] == "Suspended"

    wrong = setup.api.http.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"value": 3}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "run_input", "value"]
    resumed = resume_flow_run(run["id"], run_input={"value": "onwards"})
    assert (resumed.type.value, resumed.name) == ("SCHEDULED", "Resuming")
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "COMPLETED", final
    assert json.loads(out.read_text()) == {"ran": 1, "word": "onwards"}
    assert counted.read_text().splitlines() == ["ran"]  # the re-run took the task from its cache
    names = _names(setup, run["id"])
    assert names[names.index("Suspended") :] == ["Suspended", "Resuming", "Pending", "Running", "Completed"]
    assert setup.api.read_run(run["id"])["run_count"] == 1  # one attempt, in two processes
    with connect() as client:
        task_runs = client.read_task_runs(uuid.UUID(run["id"])).items
    assert sorted(t.state.name for t in task_runs) == ["Cached", "Completed"]


def test_a_suspend_run_automation_stops_a_running_process_and_resume_run_starts_it_again(
    setup: Setup,
) -> None:
    marker = setup.folder / "records.txt"
    deployment = setup.deployment(parameters={"path": str(marker), "sleep": 0.0, "first_sleep": 120.0})
    worker = setup.start_worker("--limit", "1")
    automations = []
    for verb in ("suspend", "resume"):
        body = {
            "name": f"{verb}-{setup.suffix}",
            "trigger": {"expect": [f"ops.{verb}.{setup.suffix}"]},
            "actions": [{"type": f"{verb}-run", "flow_run": "{{ event.payload.run }}"}],
        }
        automations.append(setup.api.post("/automations", body))
    in_every_index(setup.server, max(a["revision"] for a in automations))

    run = setup.api.run(deployment)
    setup.api.wait_state(run["id"], "RUNNING", timeout=60)
    wait_until(lambda: setup.records(marker), timeout=30, what="the first execution")
    [(_, first_pid, _)] = setup.records(marker)

    def emit(verb: str) -> None:
        event = {"event": f"ops.{verb}.{setup.suffix}", "resource": {"baton.resource.id": "ops.1"}}
        setup.api.post("/events", {**event, "payload": {"run": run["id"]}})

    emit("suspend")
    suspended = setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    assert suspended["name"] == "Suspended"
    assert suspended["message"] == f"suspended by automation 'suspend-{setup.suffix}'"
    worker.wait_log("Suspending flow run", timeout=30)
    wait_until(lambda: not process_alive(first_pid), timeout=30, what="the suspended run's process to end")
    assert setup.api.state_of(run["id"])["name"] == "Suspended"  # the worker reported nothing after

    emit("resume")
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "COMPLETED", final
    [first, second] = setup.records(marker)
    assert first[1] != second[1]  # a new process, through the worker
    names = _names(setup, run["id"])
    assert names[names.index("Running") :] == [
        "Running",
        "Suspended",
        "Resuming",
        "Pending",
        "Running",
        "Completed",
    ]


def test_a_paused_run_whose_process_dies_is_crashed_by_the_reaper(setup: Setup) -> None:
    _write_flows(setup)
    deployment = setup.deployment("pausing.py:approve", parameters={"out": str(setup.folder / "x.json")})
    worker = setup.start_worker()
    run = setup.api.run(deployment)
    setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    worker.signal(signal.SIGKILL)  # its run's process dies with it; nobody renews the lease
    worker.wait(10)
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "CRASHED", final
    assert "lease expired" in final["message"]
    names = _names(setup, run["id"])
    assert names[names.index("Paused") :] == ["Paused", "Crashed"]


def test_cancelling_a_paused_run_has_its_worker_stop_the_waiting_process(setup: Setup) -> None:
    _write_flows(setup)
    deployment = setup.deployment("pausing.py:approve", parameters={"out": str(setup.folder / "x.json")})
    worker = setup.start_worker()
    run = setup.api.run(deployment)
    setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    cancelled = _baton(setup, "flow-run", "cancel", run["id"])
    assert cancelled.returncode == 0, cancelled.stderr
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "CANCELLED", final
    worker.wait_log("Cancelling flow run", timeout=30)
    names = _names(setup, run["id"])
    assert names[names.index("Paused") :] == ["Paused", "Cancelling", "Cancelled"]


def test_baton_flow_run_suspend_stops_a_running_process_and_resume_starts_it_again(setup: Setup) -> None:
    marker = setup.folder / "records.txt"
    deployment = setup.deployment(parameters={"path": str(marker), "sleep": 0.0, "first_sleep": 120.0})
    setup.start_worker("--limit", "1")
    run = setup.api.run(deployment)
    setup.api.wait_state(run["id"], "RUNNING", timeout=60)
    wait_until(lambda: setup.records(marker), timeout=30, what="the first execution")
    [(_, first_pid, _)] = setup.records(marker)

    suspended = _baton(setup, "flow-run", "suspend", run["id"], "--reason", "maintenance")
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout.strip().endswith("(suspended)")
    state = setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    assert (state["name"], state["message"]) == ("Suspended", "maintenance")
    wait_until(lambda: not process_alive(first_pid), timeout=30, what="the suspended run's process to end")
    again = _baton(setup, "flow-run", "suspend", run["id"])
    assert again.returncode == 1 and "paused" in again.stderr, again.stderr  # 409: already suspended

    resumed = _baton(setup, "flow-run", "resume", run["id"])
    assert resumed.returncode == 0, resumed.stderr
    final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "COMPLETED", final
    [first, second] = setup.records(marker)
    assert first[1] != second[1]  # started again by the worker, in a new process
