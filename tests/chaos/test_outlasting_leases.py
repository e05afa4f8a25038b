"""Faults that outlast a run's lease, while its flow goes on and finishes (issue 13, point 2).

A lease missed while Baton could not hear heartbeats is no evidence of a crash: the run must end
Completed, with one execution and no Crashed in its history, and never run again.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baton_schemas import utcnow

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ
from ..support.waiting import eventually
from ._cluster import LEASE_SECONDS, TERMINAL, Cluster, Db, cluster, dead_letters, past

pytestmark = pytest.mark.chaos

FROZEN_LEASES = 5


@pytest.fixture
def faults(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(backends, private_mq, tmp_path) as found:
        found.start_server()
        yield found


async def _started(found: Cluster, notes: Path, gate: Path) -> tuple[str, Db]:
    deployment = await asyncio.to_thread(found.deployment)
    await asyncio.to_thread(found.start_worker)
    run_id = await asyncio.to_thread(found.run, deployment, path=str(notes), gate=str(gate))

    async def started() -> bool:
        return (run_id, "start") in found.notes(notes)

    await eventually(started, timeout=60, what="the flow's body to start")
    return run_id, Db(found.backends.database_url)


async def _ended(db: Db, run_id: str) -> str:
    async def terminal() -> str | None:
        state = await db.state(run_id)
        return state if state in TERMINAL else None

    ended = await eventually(terminal, timeout=90, interval=0.2, what="the run to end")
    assert ended is not None
    return ended


async def test_a_run_that_finished_while_the_server_was_down_is_completed(
    faults: Cluster, tmp_path: Path
) -> None:
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    run_id, db = await _started(faults, notes, gate)

    await asyncio.to_thread(faults.kill_server)
    gate.touch()  # the flow finishes while nobody can hear it

    async def finished() -> bool:
        return (run_id, "done") in faults.notes(notes)

    await eventually(finished, what="the flow's body to finish")
    # the outage outlasts the lease by a whole lease: the reaper would see it expired
    await eventually(lambda: db.lease_lapsed(run_id, LEASE_SECONDS), timeout=30, what="the lease to lapse")
    await asyncio.to_thread(faults.start_server)

    assert await _ended(db, run_id) == "COMPLETED", await db.history(run_id)
    assert "Crashed" not in await db.history(run_id)
    assert [what for run, what in faults.notes(notes) if run == run_id] == ["start", "done"]


@pytest.fixture
def quick_to_notice(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    """A server whose AMQP heartbeat is 2 s: a frozen broker is noticed within seconds."""
    with cluster(backends, private_mq, tmp_path) as found:
        found.server_env["BATON_BROKER_URL"] = f"{found.backends.broker_url}?heartbeat=2"
        found.start_server()
        yield found


async def test_a_run_that_finished_while_rabbitmq_was_frozen_is_completed(
    quick_to_notice: Cluster, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    """RabbitMQ frozen (SIGSTOP: its sockets stay open, nothing answers) for five leases: the
    tracker hears no heartbeats, and its own round trips to the broker fail, so it reaps none.
    `/ready` says the broker is away once the server's connection has given up on it."""
    faults, notes, gate = quick_to_notice, tmp_path / "notes", tmp_path / "gate"
    run_id, db = await _started(faults, notes, gate)

    await asyncio.to_thread(private_mq.pause)
    try:
        until = time.monotonic() + FROZEN_LEASES * LEASE_SECONDS
        gate.touch()  # the flow finishes while nothing can be heard

        async def ready_says_so() -> dict[str, str] | None:
            async with httpx.AsyncClient(timeout=5) as http:
                answer = await http.get(faults.api_url.removesuffix("/api") + "/ready")
            return answer.json() if answer.status_code == 503 else None

        checks = await eventually(ready_says_so, timeout=12, what="/ready reporting the frozen broker")
        assert checks is not None and checks["rabbitmq"].startswith("unavailable"), checks

        async def finished() -> bool:
            return (run_id, "done") in faults.notes(notes)

        await eventually(finished, what="the flow's body to finish")
        await eventually(
            lambda: db.lease_lapsed(run_id, LEASE_SECONDS), timeout=30, what="the lease to lapse"
        )
        await eventually(lambda: asyncio.sleep(0, past(until)), timeout=60, what="the freeze")
    finally:
        await asyncio.to_thread(private_mq.resume)

    assert await _ended(db, run_id) == "COMPLETED", (await db.history(run_id), faults.worker_log()[-3000:])
    assert "Crashed" not in await db.history(run_id)
    assert [what for run, what in faults.notes(notes) if run == run_id] == ["start", "done"]
    # what expired on the RPC queue while the broker was frozen was dropped, not parked
    assert await asyncio.to_thread(dead_letters, private_mq, faults.backends.vhost) == 0


async def test_a_paused_worker_does_not_make_its_running_flow_look_dead(
    faults: Cluster, tmp_path: Path
) -> None:
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    run_id, db = await _started(faults, notes, gate)
    worker = faults.workers[0]

    worker.send_signal(signal.SIGSTOP)
    try:
        # paused for three leases: only the flow's own process can keep the lease alive
        until = time.monotonic() + 3 * LEASE_SECONDS
        await eventually(lambda: asyncio.sleep(0, past(until)), timeout=30, what="three leases")
        assert await db.state(run_id) == "RUNNING", (await db.history(run_id), faults.worker_log()[-3000:])
        gate.touch()

        async def finished() -> bool:
            return (run_id, "done") in faults.notes(notes)

        await eventually(finished, what="the flow's body to finish")
    finally:
        worker.send_signal(signal.SIGCONT)

    assert await _ended(db, run_id) == "COMPLETED", await db.history(run_id)
    assert "Crashed" not in await db.history(run_id)
    assert [what for run, what in faults.notes(notes) if run == run_id] == ["start", "done"]


async def test_a_retry_dispatched_to_the_worker_that_still_has_the_run_is_not_swallowed(
    faults: Cluster, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    """Point 3: the worker lists the run as active when its retry's dispatch arrives. It asks
    the tracker once the run is done here, and the retry runs, instead of the dispatch being
    acked and the run left Scheduled."""
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    run_id, db = await _started(faults, notes, gate)
    with faults.http() as http:  # the server reschedules the run (as a reaped run's retry would be)
        answer = http.post(
            f"/flow_runs/{run_id}/set_state",
            json={
                "state": {
                    "type": "SCHEDULED",
                    "name": "AwaitingRetry",
                    "scheduled_time": utcnow().isoformat(),
                },
                "force": True,
            },
        )
        assert answer.status_code == 200, answer.text

    async def delivered() -> bool:
        dispatched = await db.fetchval(
            "SELECT dispatched_version = state_version FROM flow_runs WHERE id = $1", uuid.UUID(run_id)
        )
        listing = await asyncio.to_thread(
            private_mq.ctl, "list_queues", "-p", faults.backends.vhost, "name", "messages_ready"
        )
        ready = [line.split() for line in listing.splitlines() if faults.pool in line]
        return bool(dispatched) and bool(ready) and all(n == "0" for _, n in ready)

    await eventually(delivered, timeout=30, interval=0.3, what="the retry's dispatch delivered to the worker")
    gate.touch()  # the first attempt ends (its claim is stale now), then the retry runs

    assert await _ended(db, run_id) == "COMPLETED", (await db.history(run_id), faults.worker_log()[-3000:])
    assert [what for run, what in faults.notes(notes) if run == run_id] == ["start", "done", "start", "done"]
