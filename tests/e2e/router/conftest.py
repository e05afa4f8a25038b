"""Automations end to end: a user's project (flows, baton.yaml, automation.yaml), the `baton` CLI,
a real `baton worker start` and events published over raw AMQP to the live server."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from baton._amqp import Connection, Properties
from baton_schemas.topology import EVENTS

from ...support.processes import BATON
from ..conftest import LiveServer
from ..deploy import conftest as deploy_conftest
from ..deploy.conftest import Project

T = TypeVar("T")
project = deploy_conftest.project  # the fixture: a project folder and the CLI run in it

FLOWS = """
import json
from pathlib import Path

from baton import flow

OUT = Path(__file__).resolve().parent / "out"


def _record(name: str, values: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"{{name}}.json").write_text(json.dumps(values))


@flow(name="orders-{suffix}")
def process_order(order_id: str, total: float) -> None:
    _record(f"order-{{order_id}}", {{"order_id": order_id, "total": total}})


@flow(name="etl-{suffix}")
def etl(fail: bool = True) -> None:
    if fail:
        raise RuntimeError("the load step failed")


@flow(name="page-{suffix}")
def page(what: str) -> None:
    _record("page", {{"what": what}})
"""


def wait_for(probe: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")


def publish(live_server: LiveServer, *events: dict[str, Any]) -> None:
    """Publish events to `baton.events` over AMQP, as an outside system does (with confirms)."""

    async def send() -> None:
        connection = await Connection.open(live_server.backends.broker_url, name="e2e-router-publisher")
        try:
            channel = await connection.channel(confirms=True)
            for event in events:
                event.setdefault("id", str(uuid.uuid4()))
                props = Properties(content_type="application/json", message_id=event["id"])
                confirm = channel.publish(EVENTS, event["event"], orjson.dumps(event), props, mandatory=True)
                assert confirm is not None
                await confirm
        finally:
            await connection.close()

    asyncio.run(send())


class Shop:
    """A project with the flows above, its pool, and a worker serving it."""

    def __init__(self, project: Project, live_server: LiveServer) -> None:
        self.project = project
        self.live_server = live_server
        self.worker: subprocess.Popen[str] | None = None
        project.write("flows/shop.py", FLOWS.format(suffix=project.suffix))
        project.baton("work-pool", "create", project.pool, "--type", "process").ok()

    @property
    def out(self) -> Path:
        return self.project.path / "flows" / "out"

    def recorded(self, name: str) -> dict[str, Any] | None:
        path = self.out / f"{name}.json"
        return orjson.loads(path.read_bytes()) if path.exists() else None

    def start_worker(self) -> None:
        env = self.live_server.client_env(amqp=True, BATON_HOME=str(self.project.path / ".home"))
        with (self.project.path / "worker.log").open("w") as log:
            self.worker = subprocess.Popen(
                [BATON, "worker", "start", "--pool", self.project.pool, "--prestart", "1"],
                env=env,
                cwd=self.project.path,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        wait_for(lambda: "serving pool" in self.worker_log(), what="the worker serving its pool")

    def worker_log(self) -> str:
        path = self.project.path / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)

    def deployment_runs(self, flow: str, name: str) -> list[dict[str, Any]]:
        deployment = self.project.get(f"/deployments/name/{flow}-{self.project.suffix}/{name}")
        items: list[dict[str, Any]] = self.project.get("/flow_runs", deployment_id=deployment["id"])["items"]
        return items


@pytest.fixture
def shop(project: Project, live_server: LiveServer) -> Iterator[Shop]:
    found = Shop(project, live_server)
    try:
        yield found
    finally:
        found.stop()


def in_every_index(live_server: LiveServer, revision: int) -> None:
    """Wait until every running router has reached this automation revision."""
    import asyncpg

    async def behind() -> int:
        conn = await asyncpg.connect(live_server.backends.database_url)
        try:
            value = await conn.fetchval(
                """SELECT count(*) FROM router_replicas
                   WHERE heartbeat > now() - interval '10 seconds' AND revision < $1""",
                revision,
            )
            replicas = await conn.fetchval(
                "SELECT count(*) FROM router_replicas WHERE heartbeat > now() - interval '10 seconds'"
            )
        finally:
            await conn.close()
        return int(value) if replicas else 1

    wait_for(lambda: asyncio.run(behind()) == 0, timeout=15, what=f"every router at revision {revision}")
