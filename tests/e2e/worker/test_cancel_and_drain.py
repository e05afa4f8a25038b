"""Stopping runs on purpose: cancellation of a running run, and a worker's SIGTERM drain."""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import Setup, process_alive, wait_until


@pytest.mark.parametrize("prestart", [0, 1], ids=["fresh-process", "prestarted-process"])
def test_cancelling_a_running_run_stops_its_process_and_ends_it_cancelled(
    setup: Setup, prestart: int
) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts), "sleep": 300})
    setup.start_worker("--prestart", str(prestart))
    run = setup.api.run(deployment)
    [(_, pid, _)] = wait_until(lambda: setup.records(starts), what="the run to start")

    answer = setup.api.post(f"/flow_runs/{run['id']}/cancel")

    assert answer["state"]["type"] == "CANCELLING"
    final = setup.api.wait_state(run["id"], timeout=15)
    assert final["type"] == "CANCELLED", final
    assert not process_alive(pid)
    assert [s["type"] for s in setup.api.states(run["id"])][-2:] == ["CANCELLING", "CANCELLED"]


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment("flows.py:stubborn", parameters={"path": str(starts)})
    worker = setup.start_worker("--cancel-grace-seconds", "1")
    run = setup.api.run(deployment)
    [(_, pid, _)] = wait_until(lambda: setup.records(starts), what="the run to start")

    started = time.monotonic()
    setup.api.post(f"/flow_runs/{run['id']}/cancel")

    assert setup.api.wait_state(run["id"], timeout=15)["type"] == "CANCELLED"
    assert time.monotonic() - started >= 1.0
    assert not process_alive(pid)
    assert "did not stop in 1s: killing it" in worker.log()


def test_a_run_cancelled_before_a_worker_takes_it_is_dropped(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts)})
    run = setup.api.run(deployment)  # dispatched; no worker yet
    setup.api.post(f"/flow_runs/{run['id']}/cancel")
    assert setup.api.state_of(run["id"])["type"] == "CANCELLED"

    worker = setup.start_worker()
    probe = setup.api.run(deployment)  # behind the cancelled one in the queue
    assert setup.api.wait_state(probe["id"])["type"] == "COMPLETED"

    assert [run_id for run_id, _, _ in setup.records(starts)] == [probe["id"]]
    assert f"Flow run {run['id']} not taken (ABORT)" in worker.log()


def test_sigterm_drains_running_flows_and_takes_no_new_runs(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts), "sleep": 2})
    worker = setup.start_worker("--drain-seconds", "30")
    run = setup.api.run(deployment)
    wait_until(lambda: setup.records(starts), what="the run to start")

    worker.signal(signal.SIGTERM)
    worker.wait_log("draining")
    later = setup.api.run(deployment)

    assert worker.wait(30) == 0
    assert setup.api.state_of(run["id"])["type"] == "COMPLETED"
    assert setup.api.state_of(later["id"])["type"] == "SCHEDULED"  # left for another worker
    other = setup.start_worker()
    assert setup.api.wait_state(later["id"])["type"] == "COMPLETED"
    assert f"Claimed flow run {later['name']!r}" in other.log()


def test_sigterm_stops_flows_still_running_after_the_drain_as_crashed_for_their_retry_policy(
    setup: Setup,
) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(
        parameters={"path": str(starts), "first_sleep": 300}, retry_policy={"retries": 1}
    )
    worker = setup.start_worker("--drain-seconds", "1", "--cancel-grace-seconds", "5")
    run = setup.api.run(deployment)
    [(_, pid, _)] = wait_until(lambda: setup.records(starts), what="the run to start")

    worker.signal(signal.SIGTERM)

    assert worker.wait(30) == 0
    assert not process_alive(pid)
    history = setup.api.states(run["id"])
    crashed = next(s for s in history if s["type"] == "CRASHED")
    assert crashed["message"] == "worker shut down"
    assert history[-1]["name"] == "AwaitingRetry"
    setup.start_worker()  # the retry runs on the next worker
    assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
    assert len(setup.records(starts)) == 2


def test_a_second_sigterm_stops_running_flows_at_once(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts), "sleep": 300})
    worker = setup.start_worker("--drain-seconds", "300")
    run = setup.api.run(deployment)
    wait_until(lambda: setup.records(starts), what="the run to start")

    worker.signal(signal.SIGTERM)
    worker.wait_log("draining")
    worker.signal(signal.SIGTERM)

    assert worker.wait(30) == 0
    assert setup.api.state_of(run["id"])["type"] == "CRASHED"
