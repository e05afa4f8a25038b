"""Backfill of a deployment's schedules over a past range (a `run` key)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException, status

from baton_schemas.backfill import BackfillCreate, BackfillResult

from ...scheduler.backfill import BackfillRefused, backfill
from ..deps import CanRun, Conn, Ctx

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.post("/{deployment_id}/backfill", response_model=BackfillResult)
async def backfill_deployment(
    deployment_id: UUID, body: BackfillCreate, conn: Conn, ctx: Ctx, _: CanRun
) -> BackfillResult:
    """Runs for the slots of [start, end) of the deployment's schedules, due now. Idempotent:
    a slot that has a run (scheduled or backfilled before) keeps it. `dry_run` lists the slots.
    Refused with 422 past BATON_BACKFILL_MAX_RUNS slots."""
    try:
        async with conn.transaction():
            done = await backfill(conn, deployment_id, body, cap=ctx.settings.backfill_max_runs)
    except BackfillRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if done is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"deployment {deployment_id} does not exist")
    result, rows = done
    ctx.outbox.sent_after_commit(rows)
    return result
