"""A whole Baton for fault tests: a server process, worker processes and flows that record each
execution, on a vhost of the private broker and a database of their own (so no other chaos
test's tracker consumes its messages). The server can be killed and started again on its port."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.processes import BATON, ServerProcess, baton_env, server_process

LEASE_SECONDS = 3.0
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")

FLOWS = '''
import os
import time
from pathlib import Path

from baton import flow


def _note(path: str, what: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} {what} {os.getpid()}\\n")


@flow
def gated(path: str, gate: str) -> str:
    """Records its start, waits for the gate file, records its end."""
    _note(path, "start")
    while not Path(gate).exists():
        time.sleep(0.05)
    _note(path, "done")
    return "done"
'''

SERVER_ENV = {
    "BATON_DEFAULT_LEASE_SECONDS": str(LEASE_SECONDS),
    "BATON_REAPER_INTERVAL_SECONDS": "0.3",
}


@dataclass
class Cluster:
    backends: Backends
    folder: Path
    key: str = ""
    port: int | None = None
    server: ServerProcess | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    pool: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:6]}")
    server_env: dict[str, str] = field(default_factory=lambda: dict(SERVER_ENV))

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [BATON, *args], env=baton_env(self.backends), capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def start_server(self) -> ServerProcess:
        started = server_process(self.backends, self.folder, port=self.port, env=self.server_env)
        self.server = self._stack.enter_context(started)
        self.port = self.server.port
        return self.server

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(30)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def client_env(self, **extra: str) -> dict[str, str]:
        env = baton_env(self.backends, BATON_API_URL=self.api_url, BATON_API_KEY=self.key, **extra)
        env.pop("BATON_DATABASE_URL")
        return env

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30)

    def deployment(self, entrypoint: str = "flows.py:gated", **fields: Any) -> dict[str, Any]:
        body = {
            "name": f"d-{uuid.uuid4().hex[:8]}",
            "flow_name": entrypoint.rsplit(":", 1)[-1],
            "entrypoint": entrypoint,
            "work_pool_name": self.pool,
            **fields,
        }
        with self.http() as http:
            if http.get(f"/work_pools/{self.pool}").status_code == 404:
                http.post("/work_pools", json={"name": self.pool}).raise_for_status()
            answer = http.post("/deployments", json=body)
            answer.raise_for_status()
            return dict(answer.json())

    def run(self, deployment: dict[str, Any], **parameters: Any) -> str:
        with self.http() as http:
            answer = http.post(f"/deployments/{deployment['id']}/runs", json={"parameters": parameters})
            answer.raise_for_status()
            return str(answer.json()["id"])

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        argv = [BATON, "worker", "start", "--pool", self.pool, "--heartbeat-seconds", "1"]
        argv += ["--lease-seconds", str(LEASE_SECONDS), *args]
        with (self.folder / f"worker-{len(self.workers) + 1}.log").open("ab") as log:
            process = subprocess.Popen(
                argv, cwd=self.folder, env=self.client_env(**env), stdout=log, stderr=log
            )
        self.workers.append(process)
        return process

    def worker_log(self, n: int = 1) -> str:
        return (self.folder / f"worker-{n}.log").read_text(errors="replace")

    def notes(self, path: Path) -> list[tuple[str, str]]:
        if not path.exists():
            return []
        return [(run, what) for run, what, _ in (line.split() for line in path.read_text().splitlines())]

    def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGCONT)
                worker.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(10)
        self._stack.close()


async def _recreate(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def cluster(
    backends: Backends, mq: PrivateRabbitMQ, folder: Path, *, url: Callable[[str], str] | None = None
) -> Iterator[Cluster]:
    """A vhost and a database of its own, migrated, with an admin key and the flows folder.
    `url` makes the broker URL of its vhost (`mq.url` unless given: e.g. an amqps:// one)."""
    suffix = uuid.uuid4().hex[:8]
    vhost = f"faults-{suffix}"
    mq.add_vhost(vhost)
    server, _, database = backends.database_url.rpartition("/")
    name = f"{database}_faults_{suffix}"
    asyncio.run(_recreate(f"{server}/postgres", name))
    own = Backends(f"{server}/{name}", (url or mq.url)(vhost), vhost, None)
    (folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    found = Cluster(own, folder)
    try:
        found.cli("server", "db", "upgrade")
        found.key = found.cli("api-key", "create", "--name", "faults", "--scope", "admin")
        yield found
    finally:
        found.close()
        with contextlib.suppress(Exception):
            mq.ctl("delete_vhost", vhost)
        asyncio.run(_recreate(f"{server}/postgres", name, drop_only=True))


class Db:
    def __init__(self, url: str) -> None:
        self.url = url

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def state(self, run_id: str) -> str:
        return str(await self.fetchval("SELECT state_type FROM flow_runs WHERE id = $1", uuid.UUID(run_id)))

    async def history(self, run_id: str) -> list[str]:
        rows = await self.fetch(
            "SELECT name FROM states WHERE flow_run_id = $1 ORDER BY version", uuid.UUID(run_id)
        )
        return [row["name"] for row in rows]

    async def story(self, run_id: str) -> list[str]:
        """The run's states with their messages and times: what a failed assertion should show."""
        rows = await self.fetch(
            "SELECT name, state->>'message' AS message, timestamp FROM states"
            " WHERE flow_run_id = $1 ORDER BY version",
            uuid.UUID(run_id),
        )
        return [f"{row['timestamp']:%H:%M:%S.%f} {row['name']}: {row['message'] or ''}" for row in rows]

    async def lease_lapsed(self, run_id: str, by: float) -> bool:
        """The run's lease ran out at least `by` seconds ago (nobody could renew it)."""
        return bool(
            await self.fetchval(
                "SELECT lease_expires_at < now() - make_interval(secs => $2) FROM flow_runs WHERE id = $1",
                uuid.UUID(run_id),
                by,
            )
        )


def dead_letters(mq: PrivateRabbitMQ, vhost: str) -> int:
    """How many messages wait in the vhost's `baton.dead`."""
    listing = mq.ctl("list_queues", "-p", vhost, "name", "messages")
    for line in listing.splitlines():
        name, _, count = line.partition("\t")
        if name.strip() == "baton.dead":
            return int(count.strip() or 0)
    return 0


def past(deadline: float) -> bool:
    return time.monotonic() > deadline
