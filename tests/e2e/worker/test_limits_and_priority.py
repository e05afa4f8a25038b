"""Concurrency limits hold with several workers; the highest-priority queue is served first."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from .conftest import Setup, wait_until

OWNED = "('PENDING', 'RUNNING', 'CANCELLING')"


@pytest.mark.timeout(180)
def test_deployment_and_pool_limits_are_never_exceeded_with_two_workers(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    limited = setup.deployment(parameters={"path": str(starts), "sleep": 0.4}, concurrency={"limit": 2})
    free = setup.deployment(parameters={"path": str(starts), "sleep": 0.4})
    response = setup.api.http.patch(f"/work_pools/{setup.pool}", json={"concurrency_limit": 3})
    assert response.status_code == 200, response.text
    setup.start_worker("--limit", "4")
    setup.start_worker("--limit", "4", "--prestart", "2")

    samples: list[tuple[int, int]] = []  # (owned runs of the limited deployment, of the pool)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rows = setup.db.fetch(
                f"""SELECT deployment_id = $1 AS limited, count(*) AS n FROM flow_runs
                    WHERE work_pool_name = $2 AND state_type IN {OWNED} GROUP BY 1""",
                uuid.UUID(limited["id"]),
                setup.pool,
            )
            by_kind = {row["limited"]: row["n"] for row in rows}
            samples.append((by_kind.get(True, 0), sum(by_kind.values())))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        runs: list[dict[str, Any]] = []
        for _ in range(10):
            runs.append(setup.api.run(limited))
            runs.append(setup.api.run(free))
        wait_until(
            lambda: all(setup.db.counts(d["id"]).get("COMPLETED") == 10 for d in (limited, free)),
            timeout=120,
            interval=0.2,
            what="every run to complete",
        )
    finally:
        stop.set()
        sampler.join()

    assert len(samples) > 50
    assert max(n for n, _ in samples) == 2, "the deployment's limit was exceeded or never reached"
    assert max(n for _, n in samples) == 3, "the pool's limit was exceeded or never reached"
    waited = setup.db.fetchval(
        """SELECT count(*) FROM states s JOIN flow_runs fr ON fr.id = s.flow_run_id
           WHERE fr.work_pool_name = $1 AND s.name = 'AwaitingConcurrencySlot'""",
        setup.pool,
    )
    assert waited > 0  # the workers did meet full limits, and honoured them
    assert len(setup.records(starts)) == 20  # each once


def test_the_highest_priority_queue_is_served_first(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    setup.api.post(f"/work_pools/{setup.pool}/queues", {"name": "urgent", "priority": 1})
    setup.api.post(f"/work_pools/{setup.pool}/queues", {"name": "later", "priority": 5})
    later = setup.deployment(parameters={"path": str(starts)}, work_queue_name="later")
    urgent = setup.deployment(parameters={"path": str(starts)}, work_queue_name="urgent")
    # a backlog in both queues, the low-priority one first
    backlog = [setup.api.run(later)["id"] for _ in range(4)]
    backlog += [setup.api.run(urgent)["id"] for _ in range(4)]

    setup.start_worker("--limit", "1")
    wait_until(lambda: len(setup.records(starts)) == 8, timeout=60, what="the backlog to run")

    order = [run_id for run_id, _, _ in sorted(setup.records(starts), key=lambda r: r[2])]
    assert set(order[:4]) == set(backlog[4:]), "urgent runs should all start before the later ones"
    assert set(order[4:]) == set(backlog[:4])


def test_a_worker_serves_only_its_queues(setup: Setup) -> None:
    starts = setup.folder / "starts.txt"
    setup.api.post(f"/work_pools/{setup.pool}/queues", {"name": "gpu"})
    gpu = setup.deployment(parameters={"path": str(starts)}, work_queue_name="gpu")
    cpu = setup.deployment(parameters={"path": str(starts)})  # queue default
    setup.start_worker("--queue", "gpu")

    on_gpu, on_cpu = setup.api.run(gpu), setup.api.run(cpu)

    assert setup.api.wait_state(on_gpu["id"])["type"] == "COMPLETED"
    assert setup.api.state_of(on_cpu["id"])["type"] == "SCHEDULED"
    assert [run_id for run_id, _, _ in setup.records(starts)] == [on_gpu["id"]]
