"""Flow runs: create, read, list, transition, heartbeat."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response, status

from baton_schemas.envelopes import Heartbeat, HeartbeatReply, SetState
from baton_schemas.pages import FlowRunPage
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import StateEntry, StateType, TransitionResult

from ...db.flow_runs import InvalidRun, create_flow_run, get_flow_run, list_flow_runs
from ...db.pools import record_worker
from ...tracker.cancellation import cancel_flow_run
from ...tracker.ingest import cancelling_runs, extend_leases
from ...tracker.transitions import RunNotFound, propose_flow_run_state
from ..auth import Scope
from ..deps import CanRead, CanWrite, Conn, Ctx

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


@router.post("", response_model=FlowRun, status_code=status.HTTP_201_CREATED)
async def create(body: FlowRunCreate, conn: Conn, ctx: Ctx, response: Response, _: CanWrite) -> FlowRun:
    try:
        run, rows, created = await create_flow_run(conn, body)
    except InvalidRun as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    ctx.outbox.sent_after_commit(rows)
    if not created:
        response.status_code = status.HTTP_200_OK
    return run


@router.get("", response_model=FlowRunPage)
async def list_runs(
    conn: Conn,
    _: CanRead,
    state: Annotated[list[StateType] | None, Query()] = None,
    flow_name: str | None = None,
    deployment_id: UUID | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> FlowRunPage:
    try:
        runs, next_cursor = await list_flow_runs(
            conn,
            states=state,
            flow_name=flow_name,
            deployment_id=deployment_id,
            tags=tag,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return FlowRunPage(items=runs, next_cursor=next_cursor)


@router.post("/heartbeat", status_code=status.HTTP_202_ACCEPTED, response_model=HeartbeatReply)
async def heartbeat(body: Heartbeat, conn: Conn, _: CanWrite) -> HeartbeatReply:
    await record_worker(conn, body)
    extended = await extend_leases(conn, body)
    return HeartbeatReply(extended=extended, cancelling=await cancelling_runs(conn, body.flow_run_ids))


@router.get("/{run_id}", response_model=FlowRun)
async def read(run_id: UUID, conn: Conn, _: CanRead) -> FlowRun:
    run = await get_flow_run(conn, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} does not exist")
    return run


@router.post("/{run_id}/set_state", response_model=TransitionResult)
async def set_state(run_id: UUID, body: SetState, conn: Conn, ctx: Ctx, key: CanWrite) -> TransitionResult:
    if body.force and key is not None and key.scope < Scope.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "force needs an admin key")
    proposal = body.for_run(run_id)
    try:
        outcome = await propose_flow_run_state(
            conn,
            proposal,
            default_lease_seconds=ctx.settings.default_lease_seconds,
            slot_wait_seconds=ctx.settings.concurrency_slot_wait_seconds,
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.get("/{run_id}/states", response_model=list[StateEntry])
async def history(run_id: UUID, conn: Conn, _: CanRead) -> list[StateEntry]:
    rows = await conn.fetch(
        "SELECT version, state FROM states WHERE flow_run_id = $1 ORDER BY version", run_id
    )
    if not rows and await get_flow_run(conn, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} does not exist")
    return [StateEntry.model_validate({**r["state"], "version": r["version"]}) for r in rows]


@router.post("/{run_id}/cancel", response_model=TransitionResult)
async def cancel(run_id: UUID, conn: Conn, ctx: Ctx, _: CanWrite) -> TransitionResult:
    """Cancel a run: a waiting one at once; a started one through its worker (Cancelling)."""
    try:
        outcome = await cancel_flow_run(
            conn, run_id, default_lease_seconds=ctx.settings.default_lease_seconds
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result
