"""Flows run the way users run them, `python flow.py`, against a real server; what they did is
then read back through the HTTP API and the `baton` CLI.

Every test taking `sdk` runs twice: the flow process reports over HTTP, then over AMQP (as
inside a worker). Flow names carry a unique suffix (`$name` in a flow's source), so a test
finds exactly its own runs on the shared server.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, TypeVar
from uuid import UUID

import httpx
import pytest

from baton_schemas.logs import LogRecord
from baton_schemas.runs import FlowRun, TaskRun
from baton_schemas.states import State

from ...support.processes import BATON
from ...support.waiting import eventually
from ..conftest import LiveServer

T = TypeVar("T")
PROCESS_TIMEOUT = 30.0


@dataclass
class Finished:
    """A process that ran to its end."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Finished:
        assert self.returncode == 0, f"{self.args} exited {self.returncode}:\n{self.stderr}"
        return self


async def run_process(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = PROCESS_TIMEOUT
) -> Finished:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        stderr = err.decode(errors="replace")
        raise AssertionError(f"{args} still running after {timeout}s:\n{stderr}") from None
    assert process.returncode is not None
    return Finished(args, process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


class Api:
    """What a user reads back through the HTTP API, as the schemas' models."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    async def _all(self, path: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        cursor = None
        while True:
            body = await self._get(path, cursor=cursor, **params)
            items += body["items"]
            if not body["items"] or body.get("next_cursor") in (None, cursor):
                return items
            cursor = body["next_cursor"]

    async def runs(self, flow_name: str) -> list[FlowRun]:
        return [FlowRun.model_validate(r) for r in await self._all("/flow_runs", flow_name=flow_name)]

    async def run(self, run_id: UUID) -> FlowRun:
        return FlowRun.model_validate(await self._get(f"/flow_runs/{run_id}"))

    async def states(self, run_id: UUID) -> list[State]:
        return [State.model_validate(s) for s in await self._get(f"/flow_runs/{run_id}/states")]

    async def task_runs(self, run_id: UUID) -> list[TaskRun]:
        """The flow run's task runs, ordered by their key and dynamic key (hello-0, hello-1...)."""
        items = [TaskRun.model_validate(t) for t in await self._all("/task_runs", flow_run_id=run_id)]
        return sorted(items, key=lambda t: (t.task_key, int(t.dynamic_key)))

    async def task_run_states(self, task_run_id: UUID) -> list[State]:
        return [State.model_validate(s) for s in await self._get(f"/task_runs/{task_run_id}/states")]

    async def logs(self, run_id: UUID) -> list[LogRecord]:
        items = await self._all("/logs", flow_run_id=run_id, limit=5000)
        return [LogRecord.model_validate(r) for r in items]

    async def settled_runs(
        self, flow_name: str, *, count: int = 1, task_runs: int = 0, timeout: float = 15.0
    ) -> list[FlowRun]:
        """The `count` runs of `flow_name` (newest first) once the server has all of them: a
        terminal state, `task_runs` task runs each, all terminal, and the run's last log line
        ("Finished in state ...")."""

        async def complete(run: FlowRun) -> bool:
            if not run.state.is_terminal:
                return False
            tasks = await self.task_runs(run.id)
            if len(tasks) != task_runs or not all(t.state.is_terminal for t in tasks):
                return False
            logs = await self.logs(run.id)
            return any(r.task_run_id is None and r.message.startswith("Finished in") for r in logs)

        async def probe() -> list[FlowRun] | None:
            runs = await self.runs(flow_name)
            if len(runs) != count:
                return None
            for run in runs:
                if not await complete(run):
                    return None
            return runs

        return await wait_for(probe, f"{count} run(s) of {flow_name} stored", timeout)

    async def settled(self, flow_name: str, *, task_runs: int = 0, timeout: float = 15.0) -> FlowRun:
        """The one run of `flow_name`, once the server has all of it (see `settled_runs`)."""
        [run] = await self.settled_runs(flow_name, task_runs=task_runs, timeout=timeout)
        return run


def unique_name(base: str, transport: str) -> str:
    return f"{base}-{transport}-{uuid.uuid4().hex[:8]}"


def write_flow(workdir: Path, source: str, filename: str = "flow.py", **names: str) -> Path:
    """The flow's source (dedented, `$name` placeholders filled in) as a file in `workdir`."""
    path = workdir / filename
    path.write_text(Template(textwrap.dedent(source)).substitute(names))
    return path


@dataclass
class Sdk:
    """One test's view of the live server through one transport."""

    transport: str
    env: dict[str, str]
    workdir: Path
    api: Api

    def flow_name(self, base: str = "flow") -> str:
        return unique_name(base, self.transport)

    def write(self, source: str, filename: str = "flow.py", **names: str) -> Path:
        return write_flow(self.workdir, source, filename, **names)

    async def run_flow(
        self, source: str, *args: str, filename: str = "flow.py", check: bool = True, **names: str
    ) -> Finished:
        """Write the flow file and run it as `python flow.py ARGS...`, like a user does."""
        path = self.write(source, filename, **names)
        finished = await run_process([sys.executable, str(path), *args], self.env, self.workdir)
        return finished.check() if check else finished

    async def baton(self, *args: str, check: bool = True) -> Finished:
        """The `baton` CLI, as the user who ran the flow."""
        finished = await run_process([BATON, *args], self.env, self.workdir)
        return finished.check() if check else finished


@pytest.fixture(params=["http", "amqp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[Api]:
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    async with httpx.AsyncClient(base_url=live_server.api_url, headers=headers, timeout=10) as http:
        yield Api(http)


@pytest.fixture
def sdk(live_server: LiveServer, transport: str, api: Api, tmp_path: Path) -> Sdk:
    env = live_server.client_env(amqp=transport == "amqp", BATON_HOME=str(tmp_path / "home"))
    return Sdk(transport, env, tmp_path, api)


async def wait_for(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 15.0) -> T:
    """`eventually`, for a probe that answers None until the thing it waits for is there."""
    found = await eventually(probe, timeout=timeout, interval=0.1, what=what)
    assert found is not None
    return found
