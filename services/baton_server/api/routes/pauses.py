"""Pausing a flow run for input: a run pauses itself, anyone with `run` resumes it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, status

from baton_schemas.pauses import INPUT_KEY_PATTERN, FlowRunInput, PauseFlowRun, ResumeFlowRun, SuspendFlowRun
from baton_schemas.states import TransitionResult

from ...tracker.pauses import (
    InvalidInput,
    NotPaused,
    hold_flow_run,
    pause_flow_run,
    read_input,
    resume_flow_run,
)
from ...tracker.transitions import RunNotFound
from ..audit import not_audited
from ..auth import ApiKey, Scope
from ..deps import CanRun, Conn, Ctx, needs

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])

PauseKey = Annotated[str, Path(pattern=INPUT_KEY_PATTERN)]


@router.post("/{run_id}/pause", response_model=TransitionResult)
@not_audited  # a run's own report, like its other states
async def pause(
    run_id: UUID,
    body: PauseFlowRun,
    conn: Conn,
    ctx: Ctx,
    _: Annotated[ApiKey | None, needs(Scope.WORKER, Scope.RUN)],
) -> TransitionResult:
    """The run pauses itself (its engine, under its claim): Paused, its process waiting, or
    Suspended (`reschedule`), its process ending. The input schema, if any, is kept for resume."""
    try:
        outcome = await pause_flow_run(
            conn, run_id, body, default_lease_seconds=ctx.settings.default_lease_seconds
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.post("/{run_id}/suspend", response_model=TransitionResult)
async def suspend(run_id: UUID, body: SuspendFlowRun, conn: Conn, ctx: Ctx, _: CanRun) -> TransitionResult:
    """Suspend a deployment's run from outside (the dashboard's Pause): one not started yet is
    held, a started one's worker stops its process; `resume` starts it again through a worker.
    409 for a run that is over, already paused, or not a deployment's."""
    try:
        outcome = await hold_flow_run(
            conn,
            run_id,
            suspend=True,
            timeout_seconds=body.timeout_seconds,
            reason=body.reason or "suspended from the API",
            default_lease_seconds=ctx.settings.default_lease_seconds,
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except NotPaused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.post("/{run_id}/resume", response_model=TransitionResult)
async def resume(run_id: UUID, body: ResumeFlowRun, conn: Conn, ctx: Ctx, _: CanRun) -> TransitionResult:
    """Resume a paused run with the input its pause waits for: 422 naming each field that does
    not fit the pause's schema, 409 for a run that is not paused."""
    try:
        outcome = await resume_flow_run(
            conn,
            run_id,
            body.run_input,
            default_lease_seconds=ctx.settings.default_lease_seconds,
            dispatch_within=ctx.settings.dispatch_lookahead_seconds,
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except NotPaused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.get("/{run_id}/inputs/{key}", response_model=FlowRunInput)
async def read(
    run_id: UUID,
    key: PauseKey,
    conn: Conn,
    _: Annotated[ApiKey | None, needs(Scope.READ, Scope.RUN, Scope.WORKER)],
) -> FlowRunInput:
    """What a pause was resumed with (`{key}`), or the schema it waits for (`{key}-schema`)."""
    row = await read_input(conn, run_id, key)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} has no input {key!r}")
    return FlowRunInput(key=row["key"], value=row["value"], created=row["created"])
