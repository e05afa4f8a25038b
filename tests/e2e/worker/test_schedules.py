"""An interval schedule of a few seconds runs through a real worker, end to end: the scheduler
makes its runs ahead of time, dispatches each a little early, the worker claims it just before
its slot and its process starts the flow at the slot, never before."""

from __future__ import annotations

import uuid

from .conftest import Setup, wait_until


def test_an_interval_schedule_runs_through_a_worker(setup: Setup) -> None:
    path = setup.folder / "scheduled.txt"
    deployment = setup.deployment(
        parameters={"path": str(path)},
        schedules=[{"schedule": {"kind": "interval", "interval_seconds": 2}, "slug": "every-2s"}],
    )
    setup.start_worker()

    def completed() -> list[dict[str, object]] | None:
        rows = setup.db.fetch(
            """SELECT id, schedule_slot, start_time FROM flow_runs
               WHERE deployment_id = $1 AND state_type = 'COMPLETED' ORDER BY schedule_slot""",
            uuid.UUID(deployment["id"]),
        )
        return [dict(r) for r in rows] if len(rows) >= 3 else None

    runs = wait_until(completed, timeout=60, interval=0.2, what="three scheduled runs completed")
    records = {run_id: at for run_id, _, at in setup.records(path)}
    for run in runs:
        assert run["schedule_slot"] is not None
        started = records[str(run["id"])]  # the flow's code ran, once per run
        assert started >= run["schedule_slot"].timestamp() - 0.01, "a scheduled flow started before its slot"  # type: ignore[attr-defined]
    assert len(setup.records(path)) == len(records)
    keys = setup.db.fetch(
        "SELECT idempotency_key, schedule_slot FROM flow_runs WHERE id = ANY($1::uuid[])",
        [r["id"] for r in runs],
    )
    assert all(k["idempotency_key"].endswith(k["schedule_slot"].isoformat()) for k in keys)
