"""A flow run started while the server is down (issue 13, point 10): it runs locally at once,
spools what it could not send under BATON_HOME when it exits, and the spool is delivered, once,
by `baton spool flush` or by the next Baton process that reaches the server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.processes import BATON, free_port
from ..support.waiting import eventually
from ._cluster import Cluster, Db, cluster

pytestmark = pytest.mark.chaos

FLOW = """
    from baton import flow, task


    @task
    def step(i: int) -> int:
        return i


    @flow(name="spooled")
    def spooled() -> int:
        print("body started", flush=True)
        return sum(step(i) for i in range(3))


    if __name__ == "__main__":
        spooled()
"""


@pytest.fixture
def down(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    """A migrated Baton whose server is not running (yet), on a port of its own."""
    with cluster(backends, private_mq, tmp_path) as found:
        found.port = free_port()
        yield found


def _flow_env(found: Cluster, home: Path) -> dict[str, str]:
    env = found.client_env(BATON_HOME=str(home), BATON_CLOSE_TIMEOUT="1")
    env.pop("BATON_BROKER_URL")  # an ad-hoc run reports over HTTP
    return env


def _run_flow(found: Cluster, script: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)], env=_flow_env(found, home), capture_output=True, text=True, timeout=120
    )


async def _runs_named(db: Db, name: str) -> list[str]:
    rows = await db.fetch(
        "SELECT fr.state_type FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id WHERE f.name = $1", name
    )
    return [row["state_type"] for row in rows]


async def test_a_flow_started_with_the_server_down_runs_and_its_spool_is_delivered(
    down: Cluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    script = tmp_path / "spooled.py"
    script.write_text(textwrap.dedent(FLOW))
    db = Db(down.backends.database_url)

    done = await asyncio.to_thread(_run_flow, down, script, home)
    assert done.returncode == 0, done.stderr
    assert "body started" in done.stdout
    assert "spooled to" in done.stderr, done.stderr
    assert list((home / "spool").glob("*.jsonl")), "the reports are on disk"
    assert await _runs_named(db, "spooled") == []

    await asyncio.to_thread(down.start_server)
    flush = await asyncio.to_thread(
        subprocess.run, [BATON, "spool", "flush"], env=_flow_env(down, home), capture_output=True, text=True
    )
    assert flush.returncode == 0, flush.stderr
    assert list((home / "spool").glob("*.jsonl")) == []
    assert await _runs_named(db, "spooled") == ["COMPLETED"]
    tasks = await db.fetch(
        """SELECT t.state_type FROM task_runs t JOIN flow_runs fr ON fr.id = t.flow_run_id
           JOIN flows f ON f.id = fr.flow_id WHERE f.name = 'spooled'"""
    )
    assert [row["state_type"] for row in tasks] == ["COMPLETED"] * 3
    # delivered again (a second flush of the same file): nothing changes
    again = await asyncio.to_thread(
        subprocess.run, [BATON, "spool", "flush"], env=_flow_env(down, home), capture_output=True, text=True
    )
    assert again.returncode == 0 and "Delivered 0 request(s)" in again.stdout


async def test_the_next_process_that_reaches_the_server_delivers_the_spool(
    down: Cluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    script = tmp_path / "spooled.py"
    script.write_text(
        textwrap.dedent(FLOW).replace('name="spooled"', f'name="spooled-{uuid.uuid4().hex[:6]}"')
    )
    name = script.read_text().split('name="', 1)[1].split('"', 1)[0]
    db = Db(down.backends.database_url)
    done = await asyncio.to_thread(_run_flow, down, script, home)
    assert done.returncode == 0 and "spooled to" in done.stderr, done.stderr

    await asyncio.to_thread(down.start_server)
    again = await asyncio.to_thread(_run_flow, down, script, home)  # the server is up now
    assert again.returncode == 0, again.stderr

    async def both() -> bool:
        return await _runs_named(db, name) == ["COMPLETED", "COMPLETED"]

    await eventually(both, timeout=30, what="the spooled run delivered by the next process")
    assert list((home / "spool").glob("*.jsonl")) == []
