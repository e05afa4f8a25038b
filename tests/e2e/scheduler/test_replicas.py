"""Two scheduler processes racing over 200 schedules make every slot exactly once."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from ...support.waiting import eventually
from .conftest import Stack

DEPLOYMENTS, SCHEDULES_EACH = 20, 10
RUNS_EACH = 5  # the horizon each schedule keeps: refills race all along


async def test_two_schedulers_make_every_slot_once(stack: Stack) -> None:
    pool = stack.pool()
    for d in range(DEPLOYMENTS):
        schedules = [
            {"schedule": {"kind": "interval", "interval_seconds": 1 + (d * SCHEDULES_EACH + s) % 3}}
            for s in range(SCHEDULES_EACH)
        ]
        stack.deploy(pool, schedules, name=f"d{d}")
    env = {"BATON_SCHEDULER_MIN_RUNS": str(RUNS_EACH), "BATON_SCHEDULER_MIN_AHEAD_SECONDS": "0"}
    conn = await stack.db()
    try:
        with stack.scheduler(**env) as one, stack.scheduler(**env) as two:

            async def filled() -> bool:
                count = await conn.fetchval(
                    "SELECT count(DISTINCT schedule_id) FROM flow_runs WHERE schedule_id IS NOT NULL"
                )
                return bool(count == DEPLOYMENTS * SCHEDULES_EACH)

            await eventually(filled, timeout=60, what="runs for every schedule")
            # let several refills race: until some slot made after the first fill has passed
            started = await conn.fetchval("SELECT max(created) FROM flow_runs")

            async def refilled() -> bool:
                return bool(
                    await conn.fetchval(
                        """SELECT count(DISTINCT schedule_id) FROM flow_runs
                           WHERE created > $1::timestamptz + interval '3 s'""",
                        started,
                    )
                    == DEPLOYMENTS * SCHEDULES_EACH
                )

            await eventually(refilled, timeout=60, what="every schedule refilled while both ran")
            logs = one.log() + two.log()
        rows = await conn.fetch(
            """SELECT schedule_id, schedule_slot, idempotency_key, auto_scheduled FROM flow_runs
               WHERE schedule_id IS NOT NULL ORDER BY schedule_id, schedule_slot"""
        )
        spec = await conn.fetch("SELECT schedules FROM deployments")
    finally:
        await conn.close()
    assert "scheduler pass failed" not in logs
    slots: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        assert row["idempotency_key"] == f"schedule:{row['schedule_id']}:{row['schedule_slot'].isoformat()}"
        slots[row["schedule_id"]].append(row["schedule_slot"])
    assert len(slots) == DEPLOYMENTS * SCHEDULES_EACH and len(spec) == DEPLOYMENTS
    for made in slots.values():
        assert len(made) == len(set(made)), "a slot was made twice"
        steps = {b - a for a, b in itertools.pairwise(made)}
        assert len(steps) == 1 and next(iter(steps)) <= timedelta(seconds=3), f"a gap in {made}"
