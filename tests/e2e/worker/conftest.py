"""Real `baton worker start` processes against the live server, a folder of flows for them to
run, the HTTP API to drive runs, and the test database to watch them.

Every test gets a pool of its own (unique name), so tests sharing the session's server never
take each other's runs. Flows record what they do in files named by their parameters.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from baton._loop_thread import LoopThread

from ...support.processes import BATON
from ..conftest import LiveServer

T = TypeVar("T")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}

FLOWS = '''
import os
import signal
import sys
import time
from pathlib import Path

from baton import flow


def _record(path: str) -> int:
    """Append this execution; returns how many executions of this run came before."""
    run_id = os.environ["BATON_FLOW_RUN_ID"]
    target = Path(path)
    lines = target.read_text().splitlines() if target.exists() else []
    before = sum(1 for line in lines if line.startswith(run_id))
    with open(target, "a") as f:
        f.write(f"{run_id} {os.getpid()} {time.time()}\\n")
    return before


@flow
def record(path: str, sleep: float = 0.0, first_sleep: float | None = None) -> int:
    before = _record(path)
    time.sleep(first_sleep if before == 0 and first_sleep is not None else sleep)
    return before


@flow(log_prints=True)
def chatty(name: str = "world") -> None:
    print(f"printed and logged, {name}")


@flow
def hello(name: str = "world") -> str:
    print(f"hello from stdout, {name}")
    print(f"and from stderr, {name}", file=sys.stderr)
    return f"hello {name}"


@flow
def stubborn(path: str) -> None:
    """Ignores SIGTERM: only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _record(path)
    time.sleep(120)


@flow
def fails() -> None:
    raise ValueError("this flow always fails")


@flow
def exits(code: int) -> None:
    print("about to leave without a word", file=sys.stderr)
    os._exit(code)


@flow
def says_goodbye(lines: int) -> None:
    for n in range(lines):
        print(f"goodbye line {n}", flush=True)
    os._exit(9)
'''


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}: last {last!r}")


class Db:
    """The server's database, read by the tests (a small pool on its own loop thread)."""

    def __init__(self, url: str) -> None:
        self._thread = LoopThread("e2e-db")

        async def make() -> asyncpg.Pool[Any]:
            return await asyncpg.create_pool(url, min_size=1, max_size=4)

        self._pool: asyncpg.Pool[Any] = self._run(make())

    def _run(self, coro: Any) -> Any:
        return self._thread.submit(coro).result(30)

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self._run(self._pool.fetch(sql, *args))  # type: ignore[no-any-return]

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self._run(self._pool.fetchval(sql, *args))

    def counts(self, deployment_id: str) -> dict[str, int]:
        rows = self.fetch(
            "SELECT state_type, count(*) AS n FROM flow_runs WHERE deployment_id = $1 GROUP BY 1",
            uuid.UUID(deployment_id),
        )
        return {row["state_type"]: row["n"] for row in rows}

    def close(self) -> None:
        self._run(self._pool.close())
        self._thread.stop()


@dataclass
class Api:
    http: httpx.Client

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(path, json=body or {})
        assert response.status_code < 300, f"POST {path}: {response.status_code} {response.text}"
        return response.json()  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def run(self, deployment: dict[str, Any], **body: Any) -> dict[str, Any]:
        return self.post(f"/deployments/{deployment['id']}/runs", body)

    def read_run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/flow_runs/{run_id}")  # type: ignore[no-any-return]

    def states(self, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/flow_runs/{run_id}/states")  # type: ignore[no-any-return]

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        return self.get("/logs", flow_run_id=run_id, limit=500)["items"]  # type: ignore[no-any-return]

    def state_of(self, run_id: str) -> dict[str, Any]:
        return self.read_run(run_id)["state"]  # type: ignore[no-any-return]

    def wait_state(self, run_id: str, *types: str, timeout: float = 30.0) -> dict[str, Any]:
        wanted = set(types) or TERMINAL

        def reached() -> dict[str, Any] | None:
            state = self.state_of(run_id)
            return state if state["type"] in wanted else None

        return wait_until(reached, timeout=timeout, interval=0.1, what=f"run {run_id} to be {sorted(wanted)}")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    name: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        wait_until(lambda: text in self.log(), timeout=timeout, what=f"{text!r} in the log of {self.name}")


@dataclass
class Setup:
    """One test's pool, flows folder, workers and views of the server."""

    server: LiveServer
    api: Api
    db: Db
    folder: Path
    pool: str
    suffix: str
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return self.server.client_env(amqp=True, **extra)

    def deployment(self, entrypoint: str = "flows.py:record", **fields: Any) -> dict[str, Any]:
        name = fields.pop("name", f"d-{uuid.uuid4().hex[:8]}")
        flow_name = fields.pop("flow_name", entrypoint.rsplit(":", 1)[-1])
        body = {"name": name, "flow_name": flow_name, "entrypoint": entrypoint, "work_pool_name": self.pool}
        return self.api.post("/deployments", {**body, **fields})

    def start_worker(
        self, *args: str, name: str | None = None, ready: bool = True, **env: str
    ) -> WorkerProcess:
        name = name or f"w{len(self.workers) + 1}-{self.suffix}"
        log_path = self.folder / f"worker-{name}.log"
        argv = [BATON, "worker", "start", "--pool", self.pool, "--name", name]
        argv += ["--heartbeat-seconds", "1", "--lease-seconds", "3", *args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=self.folder, env=self.env(**env), stdout=log, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(process, log_path, name)
        self.workers.append(worker)
        if ready:
            worker.wait_log("serving pool", timeout=30)
        return worker

    def records(self, path: Path) -> list[tuple[str, int, float]]:
        if not path.exists():
            return []
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return [(run_id, int(pid), float(at)) for run_id, pid, at in lines]

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(10)


@pytest.fixture(scope="session")
def db(live_server: LiveServer) -> Iterator[Db]:
    database = Db(live_server.backends.database_url)
    yield database
    database.close()


@pytest.fixture
def setup(live_server: LiveServer, db: Db, tmp_path: Path) -> Iterator[Setup]:
    suffix = uuid.uuid4().hex[:8]
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    with httpx.Client(base_url=live_server.api_url, headers=headers, timeout=30) as http:
        api = Api(http)
        pool = f"pool-{suffix}"
        api.post("/work_pools", {"name": pool})
        found = Setup(live_server, api, db, tmp_path, pool, suffix)
        try:
            yield found
        finally:
            found.stop_workers()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead too
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status != "Z"
    return True
