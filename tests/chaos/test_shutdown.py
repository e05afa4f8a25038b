"""Shutdown is bounded and loses nothing (issue 13, point 9).

- The server's streams (the event stream, a run's log follow) end as soon as it is told to
  stop, each with `event: shutdown`, instead of holding it until uvicorn's graceful timeout
  cancels them.
- A worker that stops while the server is down leaves its runs' final states on the durable
  queue; the server applies them once it is back: the run ends as its flow did, once, and
  nothing lands in `baton.dead`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.processes import server_process
from ..support.waiting import eventually
from ._cluster import TERMINAL, Cluster, Db, cluster, dead_letters

pytestmark = pytest.mark.chaos


@pytest.fixture
def faults(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(backends, private_mq, tmp_path) as found:
        yield found


def _read_stream(url: str, key: str, lines: list[str], opened: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=None)) as response:
        opened.set()
        for line in response.iter_lines():
            lines.append(line)


async def test_streams_end_at_once_when_the_server_stops(faults: Cluster, tmp_path: Path) -> None:
    # a graceful timeout far longer than the test waits: only ending the streams lets it stop
    with server_process(faults.backends, tmp_path, BATON_SHUTDOWN_GRACE_SECONDS="600") as server:
        faults.port = server.port
        deployment = await asyncio.to_thread(faults.deployment)
        run_id = await asyncio.to_thread(faults.run, deployment)  # no worker: it stays Scheduled
        streams = {
            "events": f"{faults.api_url}/events/stream",
            "logs": f"{faults.api_url}/logs/stream?flow_run_id={run_id}",
        }
        lines: dict[str, list[str]] = {name: [] for name in streams}
        readers = []
        for name, url in streams.items():
            opened = threading.Event()
            reader = threading.Thread(
                target=_read_stream, args=(url, faults.key, lines[name], opened), daemon=True
            )
            reader.start()
            assert await asyncio.to_thread(opened.wait, 30), f"the {name} stream did not open"
            readers.append(reader)

        server.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.process.wait, 300)
        for reader in readers:
            await asyncio.to_thread(reader.join, 30)

    assert code == 0, server.log()[-3000:]
    for name in streams:
        assert "event: shutdown" in lines[name], (name, lines[name])
    assert "timeout graceful shutdown exceeded" not in server.log()


@pytest.mark.timeout(300)  # a cluster, two server starts and a worker's stop, on a loaded machine
async def test_final_states_of_a_worker_stopped_while_the_server_was_down_are_applied(
    faults: Cluster, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    faults.start_server()
    deployment = await asyncio.to_thread(faults.deployment)
    # it drains for 1 s, then stops the run's process (its final state already sent) and
    # tries 2 s to say so
    worker = await asyncio.to_thread(
        partial(faults.start_worker, "--drain-seconds", "1", BATON_WORKER_CLAIM_RETRY_SECONDS="2")
    )
    run_id = await asyncio.to_thread(faults.run, deployment, path=str(notes), gate=str(gate))
    db = Db(faults.backends.database_url)

    async def started() -> bool:
        return (run_id, "start") in faults.notes(notes)

    await eventually(started, timeout=60, what="the flow's body to start")
    await asyncio.to_thread(faults.kill_server)
    gate.touch()  # the flow finishes while nobody can hear it

    async def finished() -> bool:
        return (run_id, "done") in faults.notes(notes)

    await eventually(finished, what="the flow's body to finish")
    worker.send_signal(signal.SIGTERM)  # and its worker stops, the server still down
    assert await asyncio.to_thread(worker.wait, 120) == 0, faults.worker_log()[-3000:]
    assert await db.state(run_id) == "RUNNING"  # nothing reached the database yet

    await asyncio.to_thread(faults.start_server)

    async def terminal() -> str | None:
        state = await db.state(run_id)
        return state if state in TERMINAL else None

    assert await eventually(terminal, timeout=90, interval=0.2, what="the run to end") == "COMPLETED", (
        await db.history(run_id),
        faults.worker_log()[-3000:],
    )
    assert "Crashed" not in await db.history(run_id)
    assert [what for run, what in faults.notes(notes) if run == run_id] == ["start", "done"]
    assert await asyncio.to_thread(dead_letters, private_mq, faults.backends.vhost) == 0
