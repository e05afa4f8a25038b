"""A worker whose broker connection is cut (by the broker, for this worker only) serves on."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import Setup, wait_until


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _connections_named(label: str) -> list[str]:
    listing = _rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    return [line.split("\t", 1)[0] for line in listing.splitlines() if f'"{label}"' in line]


def test_the_worker_consumes_again_after_its_connection_is_closed_by_the_broker(setup: Setup) -> None:
    if setup.server.backends.rabbitmqctl is None:
        pytest.fail("this test cuts a connection with rabbitmqctl: it needs the machine's RabbitMQ")
    starts = setup.folder / "starts.txt"
    deployment = setup.deployment(parameters={"path": str(starts), "sleep": 2})
    worker = setup.start_worker("--limit", "2")
    running = setup.api.run(deployment)
    wait_until(lambda: setup.records(starts), what="a run to start")
    label = f"baton-worker {worker.name}"
    [connection] = wait_until(lambda: _connections_named(label), what="its connection")

    _rabbitmqctl("close_connection", connection, "e2e: cut the worker's connection")
    worker.wait_log("Reconnected to the broker", timeout=30)

    assert setup.api.wait_state(running["id"])["type"] == "COMPLETED"  # what ran goes on
    later = [setup.api.run(deployment) for _ in range(3)]
    for run in later:
        assert setup.api.wait_state(run["id"], timeout=60)["type"] == "COMPLETED"
    assert len(setup.records(starts)) == 4  # each once
    cancelled = setup.api.run(deployment, parameters={"sleep": 300})  # control is back too
    wait_until(lambda: len(setup.records(starts)) == 5, what="the last run to start")
    setup.api.post(f"/flow_runs/{cancelled['id']}/cancel")
    assert setup.api.wait_state(cancelled["id"], timeout=20)["type"] == "CANCELLED"
