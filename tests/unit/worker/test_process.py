"""The `process` infrastructure without a server: start, stream, signal, exit, die with the parent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from baton._worker._job import RunJob
from baton._worker._process import ForkServerLauncher, RunProcess, SpawnLauncher


def _job(**dispatch: object) -> RunJob:
    body = {
        "flow_run_id": str(uuid.uuid4()),
        "flow_run_name": "brave-test",
        "flow_name": "f",
        "state_version": 1,
        "scheduled_time": "2024-01-01T00:00:00Z",
        "work_pool_name": "p",
        "work_queue_name": "default",
        **dispatch,
    }
    return RunJob(body, uuid.uuid4(), 2, "worker-1")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        time.sleep(0.02)


async def _lines(process: RunProcess) -> dict[str, list[str]]:
    async def read(reader: asyncio.StreamReader) -> list[str]:
        return (await reader.read()).decode().splitlines()

    names = list(process.streams)
    texts = await asyncio.gather(*(read(process.streams[name]) for name in names))
    return dict(zip(names, texts, strict=True))


@pytest.fixture
def relay() -> Iterator[socket.socket]:
    """The run's end of its relay to a worker that is gone (no server here): reports fail fast."""
    ours, theirs = socket.socketpair()
    ours.close()
    yield theirs
    theirs.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_OUTAGE_GRACE_SECONDS"] = "0"
    env["BATON_CLOSE_TIMEOUT"] = "0"
    env.update(extra)
    return env


async def test_a_spawned_process_gets_its_job_and_its_streams_come_back(
    tmp_path: Path, relay: socket.socket
) -> None:
    job = _job()
    script = 'cat <&"$BATON_JOB_FD"; echo; echo oops >&2; echo baton says >&"$BATON_CONSOLE_FD"; exit 3'
    process = await SpawnLauncher().launch(job, ["/bin/bash", "-c", script], _env(), tmp_path, relay.fileno())
    try:
        lines = await _lines(process)
        code = await process.wait()
    finally:
        process.close()
    assert code == 3
    assert orjson.loads(lines["stdout"][0])["claim_id"] == str(job.claim_id)
    assert lines["stderr"] == ["oops"]
    assert lines["console"] == ["baton says"]


async def test_signalling_a_run_reaches_everything_it_started(tmp_path: Path, relay: socket.socket) -> None:
    process = await SpawnLauncher().launch(
        _job(), ["/bin/sh", "-c", "sleep 300 & echo $!; wait"], _env(), tmp_path, relay.fileno()
    )
    try:
        grandchild = int((await process.streams["stdout"].readline()).decode())
        assert process.signal_group(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGTERM
        _wait_dead(grandchild)
    finally:
        process.close()
    assert not process.signal_group(signal.SIGTERM)  # gone: nothing to signal


PARENT = """
import asyncio, sys, uuid
from pathlib import Path
from baton._worker._process import SpawnLauncher
from baton._worker._job import RunJob

async def main():
    job = RunJob({"flow_run_id": str(uuid.uuid4())}, uuid.uuid4(), 1, "w")
    process = await SpawnLauncher().launch(job, ["sleep", "300"], {}, Path.cwd(), sys.stdin.fileno())
    print(process.pid, flush=True)
    await process.wait()

asyncio.run(main())
"""


def test_a_run_process_dies_with_its_worker(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        _wait_dead(child, timeout=5)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.fixture
async def fork_server(tmp_path: Path) -> AsyncIterator[ForkServerLauncher]:
    launcher = ForkServerLauncher(2, _env(PYTHONUNBUFFERED="1"))
    await launcher.start()
    yield launcher
    await launcher.close()


def _forks(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


async def test_the_fork_server_keeps_forks_ready_and_runs_a_job_in_one(
    fork_server: ForkServerLauncher, tmp_path: Path, relay: socket.socket
) -> None:
    assert fork_server.server_pid is not None
    ready = _forks(fork_server.server_pid)
    assert len(ready) == 2
    # no server configured: the run cannot report, so it exits for the worker to report it
    job = _job(entrypoint="missing.py:main")
    process = await fork_server.launch(job, None, _env(BATON_LOG_LEVEL="INFO"), tmp_path, relay.fileno())
    try:
        assert process.pid in ready
        lines = await _lines(process)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        process.close()
    assert code == 1
    assert any(
        "entrypoint file 'missing.py' not found in " + str(tmp_path) in line for line in lines["console"]
    )
    assert os.getsid(fork_server.server_pid) != process.pid  # the run led a session of its own
    deadline = time.monotonic() + 10
    while len(_forks(fork_server.server_pid)) < 2:  # a replacement is forked
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_a_fork_server_that_dies_takes_its_forks_and_is_replaced(
    fork_server: ForkServerLauncher, tmp_path: Path, relay: socket.socket
) -> None:
    assert fork_server.server_pid is not None
    old, ready = fork_server.server_pid, _forks(fork_server.server_pid)
    os.kill(old, signal.SIGKILL)
    for pid in ready:
        _wait_dead(pid, timeout=5)
    deadline = time.monotonic() + 10
    while fork_server.alive:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    job = _job(entrypoint="missing.py:main")
    process = await fork_server.launch(job, None, _env(), tmp_path, relay.fileno())
    try:
        await _lines(process)
        assert await asyncio.wait_for(process.wait(), 30) == 1
    finally:
        process.close()
    assert fork_server.server_pid not in (None, old)
