"""The server, or its PostgreSQL, is down for 60 s while runs are in flight (issue 13, points 2,
4 and 9). The same test body runs against both faults. (At 25 s the queued run ended Crashed
once in a loaded CI run, cause not found yet: the test keeps the issue's 60 s.)

What the worker and the flows' engines send meanwhile is of two kinds. Final states wait on the
durable queue, however long the tracker is away, and are applied once it is back. Requests that
their caller resends until it gets an answer (a claim, a Running proposal) expire on the RPC
queue once nobody waits for them any more, and are dropped: each is sent again under the same
transition id, so `baton.dead` holds nothing that anyone must replay. (With the database down the
tracker's consumers pause: nothing is taken from its queues, so nothing is refused into
`baton.dead` either.)

Five runs, on a worker with four slots:
- `done` runs; its flow finishes during the outage: it ends Completed;
- `failed` runs; its flow raises during the outage: it ends Failed;
- `died` runs; its process dies (exit 3, no report) during the outage: the worker's Crashed
  waits on the durable queue, and the run ends Crashed, its true end;
- `pending` is claimed, its flow still importing when the fault begins: its Running proposal
  meets the outage, its body runs locally, and it ends Completed;
- `queued` waits in the pool's queue. The slot `died` frees is given to it during the outage,
  and the worker's claim goes unanswered until the outage ends: the worker holds the delivery
  meanwhile, rather than spend the pool queue's delivery limit on returns. It then runs once
  and ends Completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from ..support.backends import Backends
from ..support.private import PrivateRabbitMQ, private_postgres
from ..support.waiting import eventually
from ._cluster import TERMINAL, Cluster, Db, cluster, dead_letters, past

pytestmark = pytest.mark.chaos

OUTAGE_SECONDS = 60.0

FLOWS = """
import os
import time
from pathlib import Path

from baton import flow


def note(path: str, what: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.environ['BATON_FLOW_RUN_ID']} {what} {os.getpid()}\\n")


@flow
def gated(path: str, gate: str, fail: bool = False, die: bool = False) -> str:
    note(path, "start")
    while not Path(gate).exists():
        time.sleep(0.05)
    note(path, "done")
    if fail:
        raise RuntimeError("failed on purpose")
    if die:
        os._exit(3)
    return "done"
"""

# Loading this entrypoint waits for a file: its run stays Pending (claimed, Running not proposed
# yet) for as long as the test wants.
SLOW_IMPORT = """
import time
from pathlib import Path

from baton import flow

from outage_flows import note

HERE = Path(__file__).parent
(HERE / "importing").touch()
while not (HERE / "import-gate").exists():
    time.sleep(0.05)


@flow
def quick(path: str) -> str:
    note(path, "start")
    note(path, "done")
    return "done"
"""


HELD, READY = ["0", "1"], ["1", "0"]  # one dispatch: with a worker, or waiting in its queue


async def _pool_queue(mq: PrivateRabbitMQ, found: Cluster) -> list[str] | None:
    """The cluster's pool queue's messages: [ready, unacknowledged]."""
    listing = await asyncio.to_thread(
        mq.ctl, "list_queues", "-p", found.backends.vhost, "name", "messages_ready", "messages_unacknowledged"
    )
    counts = [line.split()[1:] for line in listing.splitlines() if found.pool in line]
    return counts[0] if len(counts) == 1 else None


@dataclass
class Outage:
    """A fault that lasts while Baton's processes go on: `begin()`, then `end()`."""

    begin: Callable[[], object]
    end: Callable[[], object]


@pytest.fixture(params=["server", "database"])
def outage(
    request: pytest.FixtureRequest, backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> Iterator[tuple[Cluster, Outage]]:
    """A cluster and its fault: the server killed (-9) and started again, or the PostgreSQL
    cluster the cluster's database lives on (a private one) stopped and started again."""
    with contextlib.ExitStack() as stack:
        on = backends
        if request.param == "database":
            pg = stack.enter_context(private_postgres())
            on = dataclasses.replace(backends, database_url=pg.url())
        found = stack.enter_context(cluster(on, private_mq, tmp_path))
        (tmp_path / "outage_flows.py").write_text(textwrap.dedent(FLOWS))
        (tmp_path / "slow_import.py").write_text(textwrap.dedent(SLOW_IMPORT))
        found.start_server()
        if request.param == "database":
            yield found, Outage(pg.stop, pg.start)
        else:
            yield found, Outage(found.kill_server, found.start_server)


@pytest.mark.timeout(300)  # a 60 s outage, two server starts and four runs, on a loaded machine
async def test_a_long_outage_dead_letters_nothing_and_every_run_ends_as_its_flow_did(
    outage: tuple[Cluster, Outage], private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    faults, fault = outage
    notes, gate, failing_gate = tmp_path / "notes", tmp_path / "gate", tmp_path / "failing-gate"
    db = Db(faults.backends.database_url)
    gated = await asyncio.to_thread(partial(faults.deployment, "outage_flows.py:gated"))
    quick = await asyncio.to_thread(partial(faults.deployment, "slow_import.py:quick"))
    # requests that time out after 2 s, and a claim given up after 1 s, would send the dispatch
    # back to its queue every 3 s and spend the pool queue's delivery limit (10) in this outage,
    # as the defaults (10 s, 30 s) would in a 5-minute one: an unanswered claim holds its delivery
    worker = partial(
        faults.start_worker,
        "--limit",
        "4",
        BATON_HOME=str(tmp_path / "home"),
        BATON_REQUEST_TIMEOUT="2",
        BATON_WORKER_CLAIM_RETRY_SECONDS="1",
    )
    await asyncio.to_thread(worker)

    def executions(run_id: str) -> list[str]:
        return [what for run, what in faults.notes(notes) if run == run_id]

    def start(**parameters: object) -> Awaitable[str]:
        return asyncio.to_thread(faults.run, gated, path=str(notes), **parameters)

    done = await start(gate=str(gate))
    failed = await start(gate=str(failing_gate), fail=True)
    died = await start(gate=str(failing_gate), die=True)

    async def started() -> bool:
        return all(executions(run) == ["start"] for run in (done, failed, died))

    await eventually(started, timeout=60, what="three flows' bodies to start")
    pending = await asyncio.to_thread(faults.run, quick, path=str(notes))

    async def importing() -> bool:
        return (tmp_path / "importing").exists()

    await eventually(importing, timeout=60, what="the fourth run's entrypoint to be loading")
    assert await db.state(pending) == "PENDING"
    queued = await start(gate=str(gate))
    assert await db.state(queued) == "SCHEDULED"  # the worker's four slots are taken

    await asyncio.to_thread(fault.begin)
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    # while nobody can hear: a flow finishes, one fails, one dies, one starts and finishes
    gate.touch()
    failing_gate.touch()
    (tmp_path / "import-gate").touch()

    async def bodies_ended() -> bool:
        return all(executions(run)[-1:] == ["done"] for run in (done, failed, died, pending))

    async def held() -> bool:
        """The worker has the queued run's dispatch (unacknowledged), claiming it."""
        return await _pool_queue(private_mq, faults) == HELD

    await eventually(bodies_ended, timeout=OUTAGE_SECONDS, what="four flows' bodies to end")
    await eventually(held, timeout=OUTAGE_SECONDS, interval=0.5, what="the worker claiming the queued run")
    await eventually(lambda: asyncio.sleep(0, past(outage_ends)), timeout=90, what="the outage")
    assert await held(), "the claim held its delivery through the outage"
    await asyncio.to_thread(fault.end)

    runs = (done, failed, died, pending, queued)

    async def all_ended() -> bool:
        return all([await db.state(run) in TERMINAL for run in runs])

    try:
        await eventually(all_ended, timeout=90, interval=0.3, what="every run to end")
    except AssertionError as exc:
        raise AssertionError(faults.worker_log()[-4000:]) from exc
    ended = {run: await db.state(run) for run in runs}
    histories = [await db.history(run) for run in runs]
    assert ended == {
        done: "COMPLETED",
        failed: "FAILED",
        died: "CRASHED",
        pending: "COMPLETED",
        queued: "COMPLETED",
    }, ([await db.story(run) for run in runs], faults.worker_log()[-6000:])
    for run, history in zip(runs, histories, strict=True):
        assert executions(run) == ["start", "done"], (run, executions(run))
        if run != died:
            assert "Crashed" not in history, (run, await db.story(run))
    assert await asyncio.to_thread(dead_letters, private_mq, faults.backends.vhost) == 0, (
        await asyncio.to_thread(
            private_mq.ctl, "list_queues", "-p", faults.backends.vhost, "name", "messages"
        )
    )


@pytest.fixture
def faults(backends: Backends, private_mq: PrivateRabbitMQ, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(backends, private_mq, tmp_path) as found:
        (tmp_path / "outage_flows.py").write_text(textwrap.dedent(FLOWS))
        found.start_server()
        yield found


@pytest.mark.timeout(240)  # a cluster, two server and two worker starts, on a loaded machine
async def test_a_worker_stopped_while_its_claim_is_unanswered_gives_the_dispatch_back(
    faults: Cluster, private_mq: PrivateRabbitMQ, tmp_path: Path
) -> None:
    """The server is down and the worker holds a dispatch whose claim nobody answers. Told to
    stop, it exits and the dispatch is back in its queue, neither lost nor parked: a worker
    started once the server is back runs it, once."""
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    db = Db(faults.backends.database_url)
    gated = await asyncio.to_thread(partial(faults.deployment, "outage_flows.py:gated"))
    env = {"BATON_HOME": str(tmp_path / "home"), "BATON_REQUEST_TIMEOUT": "2"}
    worker = await asyncio.to_thread(
        partial(
            faults.start_worker,
            "--limit",
            "1",
            "--drain-seconds",
            "1",
            BATON_WORKER_CLAIM_RETRY_SECONDS="1",
            **env,
        )
    )

    def executions(run_id: str) -> list[str]:
        return [what for run, what in faults.notes(notes) if run == run_id]

    dying = await asyncio.to_thread(faults.run, gated, path=str(notes), gate=str(gate), die=True)

    async def started() -> bool:
        return executions(dying) == ["start"]

    await eventually(started, timeout=60, what="the first flow's body to start")
    queued = await asyncio.to_thread(faults.run, gated, path=str(notes), gate=str(gate))
    assert await db.state(queued) == "SCHEDULED"  # the worker's one slot is taken

    await asyncio.to_thread(faults.kill_server)
    gate.touch()  # the first run's process dies: its slot goes to the queued run, whose claim waits

    async def held() -> bool:
        return await _pool_queue(private_mq, faults) == HELD

    await eventually(held, timeout=60, interval=0.5, what="the worker claiming the queued run")
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 60) == 0, faults.worker_log()[-3000:]

    async def given_back() -> bool:  # the broker requeues it once it has seen the worker go
        return await _pool_queue(private_mq, faults) == READY

    await eventually(given_back, timeout=30, interval=0.3, what="the dispatch back in its queue")

    await asyncio.to_thread(faults.start_server)
    await asyncio.to_thread(partial(faults.start_worker, **env))

    async def ended() -> bool:
        return all([await db.state(run) in TERMINAL for run in (dying, queued)])

    await eventually(ended, timeout=90, interval=0.3, what="both runs to end")
    assert [await db.state(dying), await db.state(queued)] == ["CRASHED", "COMPLETED"], [
        await db.history(dying),
        await db.history(queued),
    ]
    assert executions(queued) == ["start", "done"]
    assert await asyncio.to_thread(dead_letters, private_mq, faults.backends.vhost) == 0
