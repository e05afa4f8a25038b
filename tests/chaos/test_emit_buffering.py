"""`emit_event` while Baton cannot be reached (issue 14, point 6): the events wait in the
process's buffer and go out, each stored once, when the server (over HTTP) or the broker (over
AMQP) is back, within the process's close timeout."""

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
from ..support.processes import free_port
from ..support.waiting import eventually
from ._cluster import Cluster, Db, cluster

pytestmark = pytest.mark.chaos

SCRIPT = """
    import sys
    from baton import emit_event

    for n in range(5):
        emit_event(f"{sys.argv[1]}.{n}", resource={"baton.resource.id": "buffered.source"})
    print("emitted", flush=True)
"""


@pytest.fixture
def baton(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    """A migrated Baton on a port of its own, its server not started yet."""
    with cluster(backends, private_mq, tmp_path) as found:
        found.port = free_port()
        yield found


def _emit(found: Cluster, tmp_path: Path, prefix: str, *, amqp: bool) -> subprocess.Popen[str]:
    script = tmp_path / "emit.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = found.client_env(BATON_CLOSE_TIMEOUT="90")
    if not amqp:
        env.pop("BATON_BROKER_URL")
    process = subprocess.Popen(
        [sys.executable, str(script), prefix],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "emitted"  # emit_event returned: buffered
    return process


async def _stored(db: Db, prefix: str) -> list[str]:
    rows = await db.fetch("SELECT event FROM events WHERE event LIKE $1 ORDER BY event", f"{prefix}.%")
    return [row["event"] for row in rows]


async def _exits(process: subprocess.Popen[str]) -> int:
    """Its exit status, once it ended (its pipes read and closed); stderr if it failed."""
    _, stderr = await asyncio.to_thread(process.communicate, timeout=120)
    assert process.returncode == 0, stderr
    return process.returncode


async def test_events_emitted_while_the_server_is_down_go_out_over_http_when_it_is_back(
    baton: Cluster, tmp_path: Path
) -> None:
    prefix = f"buffered-http-{uuid.uuid4().hex[:6]}"
    db = Db(baton.backends.database_url)
    emitter = _emit(baton, tmp_path, prefix, amqp=False)
    await asyncio.sleep(2)  # a few failed sends while nothing listens on the port
    assert emitter.poll() is None, "the process waits for its events, it does not drop them"
    await asyncio.to_thread(baton.start_server)
    assert await _exits(emitter) == 0
    expected = [f"{prefix}.{n}" for n in range(5)]

    async def all_stored() -> bool:
        return await _stored(db, prefix) == expected

    await eventually(all_stored, timeout=30, what="the buffered events stored once each")


async def test_events_emitted_while_the_broker_is_down_go_out_over_amqp_when_it_is_back(
    baton: Cluster, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    prefix = f"buffered-amqp-{uuid.uuid4().hex[:6]}"
    db = Db(baton.backends.database_url)
    await asyncio.to_thread(baton.start_server)
    await asyncio.to_thread(private_mq.stop_app)
    try:
        emitter = _emit(baton, tmp_path, prefix, amqp=True)
        await asyncio.sleep(2)
        assert emitter.poll() is None, "the process waits for its events, it does not drop them"
    finally:
        await asyncio.to_thread(private_mq.start_app)
    assert await _exits(emitter) == 0
    expected = [f"{prefix}.{n}" for n in range(5)]

    async def all_stored() -> bool:
        return await _stored(db, prefix) == expected

    await eventually(all_stored, timeout=60, what="the buffered events stored once each")
