"""The server goes away for a few seconds in the middle of a run and comes back (a new process on
the same database, vhost and port): the run goes on, and its whole history arrives afterwards.

Over HTTP the API is unreachable, so the flow process keeps its task states and logs and delivers
them when it is back. Over AMQP the tracker is away but RabbitMQ keeps what the run publishes.
These tests start servers of their own (with a database and vhost of their own), not the shared
`live_server`, whose tracker would otherwise consume the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ...support.backends import Backends
from ...support.backends import test_backends as private_backends
from ...support.processes import BATON, ServerProcess, baton_env, server_process
from ..conftest import LiveServer
from .conftest import PROCESS_TIMEOUT, Api, unique_name, write_flow

STEPS = 8

LONG_FLOW = """
    import time

    from baton import flow, get_run_logger, task


    @task
    def step(i: int) -> int:
        time.sleep(0.4)
        get_run_logger().info("step %d done", i)
        return i


    @flow(name="$name", log_prints=True)
    def long_flow(n: int = 8) -> int:
        total = 0
        for i in range(n):
            total += step(i)
        print(f"total {total}")
        return total


    if __name__ == "__main__":
        long_flow()
"""


@pytest.fixture(scope="module")
def own_backends() -> Iterator[Backends]:
    with private_backends() as backends:
        yield backends


@pytest.fixture(scope="module")
def own_key(own_backends: Backends) -> str:
    return subprocess.run(
        [BATON, "api-key", "create", "--name", "outage", "--scope", "admin"],
        env=baton_env(own_backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class Servers:
    """Servers started one after the other on the same backends and port."""

    def __init__(self, backends: Backends, log_dir: Path) -> None:
        self.backends = backends
        self.log_dir = log_dir
        self.stack = contextlib.ExitStack()
        self.port: int | None = None

    async def start(self) -> ServerProcess:
        started = server_process(self.backends, self.log_dir, port=self.port)
        server = await asyncio.to_thread(self.stack.enter_context, started)
        self.port = server.port
        return server


@pytest.fixture
async def servers(own_backends: Backends, tmp_path: Path) -> AsyncIterator[Servers]:
    found = Servers(own_backends, tmp_path)
    with found.stack:
        yield found


async def _read_until(stream: asyncio.StreamReader, seen: list[str], fragment: str) -> None:
    while not any(fragment in line for line in seen):
        line = await asyncio.wait_for(stream.readline(), PROCESS_TIMEOUT)
        if not line:
            raise AssertionError(f"the flow ended before printing {fragment!r}:\n{''.join(seen)}")
        seen.append(line.decode(errors="replace"))


async def test_a_run_survives_a_server_restart_and_its_history_arrives(
    servers: Servers, own_key: str, transport: str, tmp_path: Path
) -> None:
    server = await servers.start()
    live = LiveServer(server, servers.backends, own_key)
    env = live.client_env(amqp=transport == "amqp", BATON_HOME=str(tmp_path / "home"))
    name = unique_name("long-flow", transport)
    path = write_flow(tmp_path, LONG_FLOW, name=name)

    process = await asyncio.create_subprocess_exec(
        sys.executable, str(path), env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        await _read_until(process.stderr, seen, "Task run 'step-0' - Finished in state Completed()")
        await asyncio.to_thread(server.stop)  # SIGTERM, mid-run
        # the run goes on without a server, to its last task run; its end waits for one
        await _read_until(process.stderr, seen, f"Task run 'step-{STEPS - 1}' - Finished in state")
        assert process.returncode is None
        await servers.start()  # a new server where the old one was
        rest = await asyncio.wait_for(process.stderr.read(), PROCESS_TIMEOUT)
        seen.append(rest.decode(errors="replace"))
        assert await process.wait() == 0, "".join(seen)
        if transport == "http":  # the flow process saw the outage (over AMQP, RabbitMQ hid it)
            assert any("Baton server unreachable" in line for line in seen), "".join(seen)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    headers = {"Authorization": f"Bearer {own_key}"}
    async with httpx.AsyncClient(base_url=live.api_url, headers=headers, timeout=10) as http:
        api = Api(http)
        run = await api.settled(name, task_runs=STEPS)
        assert (run.state.name, run.run_count) == ("Completed", 1)
        assert [s.name for s in await api.states(run.id)] == ["Pending", "Running", "Completed"]
        tasks = await api.task_runs(run.id)
        assert [t.name for t in tasks] == [f"step-{i}" for i in range(STEPS)]
        for task_run in tasks:
            assert (task_run.state.name, task_run.run_count) == ("Completed", 1)
            states = [s.name for s in await api.task_run_states(task_run.id)]
            assert states == ["Pending", "Running", "Completed"], task_run.name
        messages = [(r.task_run_id, r.message) for r in await api.logs(run.id)]
        for task_run, i in zip(tasks, range(STEPS), strict=True):
            assert (task_run.id, f"step {i} done") in messages
            assert (task_run.id, "Finished in state Completed()") in messages
        assert (None, f"total {sum(range(STEPS))}") in messages
        assert messages[-1] == (None, "Finished in state Completed()")
        assert len(messages) == len(set(messages)), "a log line was stored twice"
