"""The scheduler is killed, kept down past several slots, then restarted: each catch-up policy
does what it says with the slots missed meanwhile."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

from baton_schemas import utcnow

from ...support.waiting import eventually
from .conftest import Stack

INTERVAL = 2.0
MISSED_AFTER = 1.0
ENV = {
    "BATON_SCHEDULER_MIN_RUNS": "1",
    "BATON_SCHEDULER_MIN_AHEAD_SECONDS": "0",
    "BATON_SCHEDULER_MISSED_AFTER_SECONDS": str(MISSED_AFTER),
}

_RUNS = """
    SELECT fr.schedule_slot AS slot, fr.state_name, fr.state->>'message' AS reason,
           fr.dispatched_version IS NOT NULL AS dispatched
    FROM flow_runs fr JOIN deployments d ON d.id = fr.deployment_id
    WHERE d.name = $1 ORDER BY fr.schedule_slot"""


async def test_each_catchup_policy_after_an_outage(stack: Stack) -> None:
    pool = stack.pool()
    schedule = [{"schedule": {"kind": "interval", "interval_seconds": INTERVAL}}]
    for policy in ("all", "latest", "none"):
        stack.deploy(pool, schedule, name=policy, schedule_policy={"catchup": policy, "catchup_window": "1h"})
    conn = await stack.db()
    try:

        async def dispatched(name: str, at_least: int) -> bool:
            rows = await conn.fetch(_RUNS, name)
            return sum(bool(r["dispatched"]) for r in rows) >= at_least

        with stack.scheduler(**ENV) as scheduler:
            for name in ("all", "latest", "none"):  # running normally: runs go out on time
                await eventually(partial(dispatched, name, 2), timeout=30, what=f"{name} running")
            scheduler.process.kill()
            scheduler.process.wait()
        killed = utcnow()

        async def clock_passed() -> bool:  # the outage: several slots go by
            await asyncio.sleep(0.2)
            return utcnow() > killed + timedelta(seconds=4 * INTERVAL)

        await eventually(clock_passed, timeout=30, what="the outage")
        restarted = utcnow()
        # missed for sure: passed by more than MISSED_AFTER before the first pass could look
        missed_before = restarted - timedelta(seconds=MISSED_AFTER)
        with stack.scheduler(**ENV):
            back = utcnow()

            async def decided() -> bool:
                for name in ("all", "latest", "none"):
                    rows = await conn.fetch(_RUNS, name)
                    open_ = [
                        r
                        for r in rows
                        if r["slot"] < back and not r["dispatched"] and r["state_name"] != "Skipped"
                    ]
                    if open_ or not rows or rows[-1]["slot"] < back:
                        return False
                return True

            await eventually(decided, timeout=30, what="every missed slot decided")
            runs = {name: await conn.fetch(_RUNS, name) for name in ("all", "latest", "none")}
    finally:
        await conn.close()

    # slots just after the kill may have been dispatched before it (a little ahead of time)
    down = killed + timedelta(seconds=1)

    def missed(name: str) -> list:  # type: ignore[type-arg]
        return [r for r in runs[name] if down < r["slot"] < missed_before]

    for name in ("all", "latest", "none"):
        assert len(missed(name)) >= 3, f"{name}: the outage should have missed several slots"
    # all: every missed slot runs
    assert all(r["dispatched"] for r in missed("all"))
    assert not [r for r in runs["all"] if r["state_name"] == "Skipped"]
    # none: no missed slot runs; each leaves a Skipped run with the reason
    assert all(r["state_name"] == "Skipped" and not r["dispatched"] for r in missed("none"))
    assert all("catch-up 'none'" in r["reason"] for r in missed("none"))
    # latest: only the newest missed slot runs
    latest = missed("latest")
    assert all(r["state_name"] == "Skipped" and "'latest'" in r["reason"] for r in latest[:-1])
    after = [r for r in runs["latest"] if r["slot"] >= latest[-1]["slot"] and r["slot"] < back]
    assert any(r["dispatched"] for r in after)  # the newest missed one (or, near the restart, the next)
