"""Overlap: a schedule's due run while its previous run is still going."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from baton_schemas import utcnow
from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Completed, Running, State
from baton_server.context import ServerContext
from baton_server.scheduler.horizon import Horizon
from baton_server.scheduler.service import SchedulerService
from baton_server.tracker.transitions import propose_flow_run_state

from ...support.waiting import eventually
from .helpers import deploy, runs_of


async def _force(ctx: ServerContext, run_id: uuid.UUID, state: State) -> None:
    async with ctx.pool.acquire() as conn:
        outcome = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=run_id, state=state, force=True)
        )
    ctx.outbox.sent_after_commit(outcome.outbox)


async def _until(when: datetime) -> None:
    async def passed() -> bool:
        return utcnow() >= when

    await eventually(passed, timeout=30, interval=0.02, what=f"the clock to reach {when}")


async def _schedule(
    ctx: ServerContext, overlap: str
) -> tuple[SchedulerService, uuid.UUID, list[dict[str, Any]]]:
    # slots 3 s apart, anchored so that the first is a few seconds away
    anchor = utcnow().replace(microsecond=0) + timedelta(seconds=3)
    deployment = await deploy(
        ctx,
        [{"schedule": {"kind": "interval", "interval_seconds": 3, "anchor_date": anchor.isoformat()}}],
        policy={"overlap": overlap},
    )
    scheduler = SchedulerService(ctx)
    scheduler.horizon = Horizon(min_runs=3, min_ahead=timedelta(0))
    await scheduler.run_pass()
    runs: list[dict[str, Any]] = []

    async def made() -> bool:
        # the session's scheduler, when another test started it, may hold the schedule (SKIP
        # LOCKED) and make these runs itself: either way they appear
        nonlocal runs
        runs = await runs_of(ctx, deployment)
        return len(runs) >= 3

    await eventually(made, what="the schedule's first three runs")
    return scheduler, deployment, runs[:3]


async def _by_id(ctx: ServerContext, deployment: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    return {r["id"]: r for r in await runs_of(ctx, deployment)}


async def _dispatched(ctx: ServerContext, run_id: uuid.UUID) -> bool:
    async with ctx.pool.acquire() as conn:
        return bool(
            await conn.fetchval("SELECT dispatched_version IS NOT NULL FROM flow_runs WHERE id = $1", run_id)
        )


async def test_skip(ctx: ServerContext) -> None:
    scheduler, deployment, (first, second, _) = await _schedule(ctx, "skip")
    await _force(ctx, first["id"], Running())
    await _until(second["schedule_slot"] - timedelta(seconds=ctx.settings.dispatch_lookahead_seconds))
    await scheduler.run_pass()
    runs = await _by_id(ctx, deployment)
    skipped = runs[second["id"]]
    assert (skipped["state_type"], skipped["state_name"]) == ("CANCELLED", "Skipped")
    assert str(first["id"]) in skipped["state"]["message"] and "overlap 'skip'" in skipped["state"]["message"]
    assert runs[first["id"]]["state_type"] == "RUNNING"


async def test_buffer_one(ctx: ServerContext) -> None:
    scheduler, deployment, (first, second, third) = await _schedule(ctx, "buffer_one")
    await _force(ctx, first["id"], Running())
    await _until(third["schedule_slot"] - timedelta(seconds=ctx.settings.dispatch_lookahead_seconds))
    await scheduler.run_pass()
    runs = await _by_id(ctx, deployment)
    assert runs[second["id"]]["state_name"] in ("Scheduled", "Late") and not await _dispatched(
        ctx, second["id"]
    )
    assert runs[third["id"]]["state_name"] == "Skipped"
    assert "overlap 'buffer_one'" in runs[third["id"]]["state"]["message"]
    await _force(ctx, first["id"], Completed())  # the previous one ends: the held one goes
    await scheduler.run_pass()
    assert await _dispatched(ctx, second["id"])


async def test_cancel_other(ctx: ServerContext) -> None:
    scheduler, deployment, (first, second, _) = await _schedule(ctx, "cancel_other")
    await _force(ctx, first["id"], Running())
    await _until(second["schedule_slot"] - timedelta(seconds=ctx.settings.dispatch_lookahead_seconds))
    await scheduler.run_pass()
    runs = await _by_id(ctx, deployment)
    assert runs[first["id"]]["state_type"] == "CANCELLING"
    assert "overlap 'cancel_other'" in runs[first["id"]]["state"]["message"]
    assert await _dispatched(ctx, second["id"])


async def test_allow_starts_it_anyway(ctx: ServerContext) -> None:
    scheduler, deployment, (first, second, _) = await _schedule(ctx, "allow")
    await _force(ctx, first["id"], Running())
    await _until(second["schedule_slot"] - timedelta(seconds=ctx.settings.dispatch_lookahead_seconds))
    await scheduler.run_pass()
    assert await _dispatched(ctx, second["id"])
    assert (await _by_id(ctx, deployment))[first["id"]]["state_type"] == "RUNNING"
