"""Two workers on one pool: every run is executed once, by one of them."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import Setup, wait_until

RUNS = 200


@pytest.mark.timeout(300)
def test_two_workers_execute_each_of_200_runs_exactly_once(setup: Setup) -> None:
    executions = setup.folder / "executions.txt"
    deployment = setup.deployment(parameters={"path": str(executions)})
    # one of each kind of infrastructure: fresh interpreters and pre-started ones
    setup.start_worker("--limit", "4")
    setup.start_worker("--limit", "8", "--prestart", "2")

    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: setup.api.run(deployment)["id"], range(RUNS)))

    wait_until(
        lambda: setup.db.counts(deployment["id"]).get("COMPLETED") == RUNS,
        timeout=240,
        interval=0.5,
        what=f"{RUNS} completed runs",
    )
    counts = setup.db.counts(deployment["id"])
    assert counts == {"COMPLETED": RUNS}, counts
    executed = Counter(run_id for run_id, _, _ in setup.records(executions))
    assert set(executed) == set(runs)
    assert [run for run, n in executed.items() if n != 1] == []
    owners = setup.db.fetch(
        """SELECT s.state->>'message' AS message, count(*) AS n FROM states s
           JOIN flow_runs fr ON fr.id = s.flow_run_id
           WHERE fr.deployment_id = $1 AND s.type = 'PENDING' GROUP BY 1""",
        uuid.UUID(deployment["id"]),
    )
    assert sum(row["n"] for row in owners) == RUNS  # one claim per run
    assert len(owners) == 2, owners  # and both workers took some
