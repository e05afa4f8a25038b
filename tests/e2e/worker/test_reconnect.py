"""A worker whose broker connection is cut (by the broker, for this worker only) serves on, on
its one connection: the tracker's client, its pool queues' consumers and its control queue all
ride on one `baton._amqp` link (one AMQP stack per process)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Setup, wait_until


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _connections_named(label: str) -> list[str]:
    listing = _rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    return [line.split("\t", 1)[0] for line in listing.splitlines() if f'"{label}"' in line]


def _broker_sockets(pid: int, port: int) -> int:
    """How many TCP connections to the broker's port process `pid` itself holds (its own file
    descriptors, not its children's)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: established
                count += 1
    return count


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
    port = urlsplit(setup.server.backends.broker_url).port or 5672
    assert _broker_sockets(worker.pid, port) == 1  # one stack: no second client beside the link

    _rabbitmqctl("close_connection", connection, "e2e: cut the worker's connection")
    worker.wait_log("Reconnected to the broker", timeout=30)
    [again] = wait_until(lambda: _connections_named(label), what="its new connection")
    assert again != connection
    assert _broker_sockets(worker.pid, port) == 1

    assert setup.api.wait_state(running["id"])["type"] == "COMPLETED"  # what ran goes on
    later = [setup.api.run(deployment) for _ in range(3)]
    for run in later:
        assert setup.api.wait_state(run["id"], timeout=60)["type"] == "COMPLETED"
    assert len(setup.records(starts)) == 4  # each once
    cancelled = setup.api.run(deployment, parameters={"sleep": 300})  # control is back too
    wait_until(lambda: len(setup.records(starts)) == 5, what="the last run to start")
    setup.api.post(f"/flow_runs/{cancelled['id']}/cancel")
    assert setup.api.wait_state(cancelled["id"], timeout=20)["type"] == "CANCELLED"
