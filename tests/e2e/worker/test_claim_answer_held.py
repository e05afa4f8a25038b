"""A claim the tracker accepted but whose answer does not reach the worker (held up in an outage,
or behind the tracker's backlog after one) keeps its lease while the worker asks again: the
worker's heartbeats name the runs it is still claiming (issue 13, point 2: a run is never
recorded Crashed because of an outage). Before, they named only the runs it ran, so the claimed
run's lease lapsed and the reaper crashed it although the worker was alive and asking.

A TCP proxy stands between the worker and the broker. When the worker's claim goes by, the
proxy holds everything the broker sends the worker (the claim's answer, confirms) for longer
than the lease, while the worker's own messages (its claim again, its heartbeats) go on.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from ...support.proxy import ThreadedProxy
from .conftest import Setup, wait_until

LEASE_SECONDS = 4  # the reaper looks every 2 s: lapsed and reaped within about 6 s
HELD_SECONDS = 10


def test_a_claim_whose_answer_is_held_up_keeps_its_lease_and_the_run_runs_once(
    setup: Setup, tmp_path: Path
) -> None:
    broker = urlsplit(setup.server.backends.broker_url)
    with ThreadedProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as proxy:
        setup.start_worker(
            "--lease-seconds",
            str(LEASE_SECONDS),
            BATON_BROKER_URL=proxy.inner.url(setup.server.backends.broker_url),
            BATON_REQUEST_TIMEOUT="1",  # each unanswered claim is sent again after a second
        )
        proxy.call(lambda: proxy.inner.hold_replies_after(b'"claim":{"'))
        records = tmp_path / "records.txt"
        deployment = setup.deployment("flows.py:record")
        run = setup.api.run(deployment, parameters={"path": str(records)})

        wait_until(lambda: proxy.trapped, timeout=30, what="the worker's claim")
        wait_until(
            lambda: setup.api.state_of(run["id"])["type"] == "PENDING", timeout=10, what="the claim accepted"
        )
        held_until = time.monotonic() + HELD_SECONDS
        while time.monotonic() < held_until:  # well past the lease: still the worker's
            state = setup.api.state_of(run["id"])
            assert state["type"] == "PENDING", f"the held claim's run ended {state}"
            time.sleep(0.5)
        proxy.call(proxy.inner.thaw)

        final = setup.api.wait_state(run["id"], timeout=60)
    assert final["type"] == "COMPLETED", final
    assert [r[0] for r in setup.records(records)] == [run["id"]], "run once"
    assert "CRASHED" not in [s["type"] for s in setup.api.states(run["id"])]
