"""Flow runs: create, read, list, transition, heartbeat."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from baton_schemas.envelopes import Heartbeat, HeartbeatReply, SetState
from baton_schemas.limits import Name, Tag
from baton_schemas.pages import FlowRunPage
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import StateEntry, StateType, TransitionResult

from ...db.flow_runs import IdempotencyConflict, InvalidRun, create_flow_run, get_flow_run, list_flow_runs
from ...db.job_variables import InvalidJobVariables, check_run_job_variables
from ...db.pools import record_worker
from ...tracker.cancellation import cancel_flow_run
from ...tracker.ingest import cancelling_runs, extend_leases
from ...tracker.retry import NotRetryable, delete_flow_run, retry_flow_run
from ...tracker.transitions import RunNotFound, propose_flow_run_state
from ..audit import not_audited
from ..auth import ApiKey, Scope
from ..deps import CanRead, CanRun, Conn, Ctx, IsAdmin, IsWorker, needs, require

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


# who reads a run: readers, and those who start runs (to follow them) or execute them
ReadsRuns = Annotated[ApiKey | None, needs(Scope.READ, Scope.RUN, Scope.WORKER)]


@router.post("", response_model=FlowRun, status_code=status.HTTP_201_CREATED)
async def create(
    body: FlowRunCreate,
    conn: Conn,
    ctx: Ctx,
    response: Response,
    key: Annotated[ApiKey | None, needs(Scope.RUN, Scope.WORKER)],
) -> FlowRun:
    """A flow run. Ad hoc (a flow that runs where it was started and reports here): a `run` or
    `worker` key. One that a worker executes (of a deployment, or on a work pool): `run`; with
    job variables, `deploy`, since they decide what the worker executes."""
    if body.job_variables:
        require(key, Scope.DEPLOY, "setting job variables")
    if body.deployment_id is not None or body.work_pool_name is not None:
        require(key, Scope.RUN, "a run that a worker executes")
    try:
        if body.job_variables:
            await check_run_job_variables(conn, body.work_pool_name, body.job_variables)
        run, rows, created = await create_flow_run(conn, body)
    except IdempotencyConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except InvalidJobVariables as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors) from exc
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
    flow_name: Annotated[Name | None, Query()] = None,
    deployment_id: UUID | None = None,
    tag: Annotated[list[Tag] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    name: Annotated[str | None, Query(max_length=200, description="Runs with this name.")] = None,
    id_prefix: Annotated[
        str | None, Query(max_length=36, description="Runs whose id starts with these hex digits.")
    ] = None,
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
            name=name,
            id_prefix=id_prefix,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return FlowRunPage(items=runs, next_cursor=next_cursor)


@router.post("/heartbeat", status_code=status.HTTP_202_ACCEPTED, response_model=HeartbeatReply)
@not_audited
async def heartbeat(body: Heartbeat, conn: Conn, _: IsWorker) -> HeartbeatReply:
    await record_worker(conn, body)
    extended = await extend_leases(conn, body)
    return HeartbeatReply(extended=extended, cancelling=await cancelling_runs(conn, body.flow_run_ids))


@router.get("/{run_id}", response_model=FlowRun)
async def read(run_id: UUID, conn: Conn, _: ReadsRuns) -> FlowRun:
    run = await get_flow_run(conn, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} does not exist")
    return run


@router.post("/{run_id}/set_state", response_model=TransitionResult)
@not_audited  # a run's report; its history is the states table. Forced changes are audited.
async def set_state(
    run_id: UUID,
    body: SetState,
    conn: Conn,
    ctx: Ctx,
    request: Request,
    key: Annotated[ApiKey | None, needs(Scope.WORKER, Scope.RUN)],
) -> TransitionResult:
    if body.force:
        require(key, Scope.ADMIN, "force (skipping the rules)")
        request.state.audit = True
        request.state.audit_detail = {"state": body.state.name, "force": True}
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
async def history(run_id: UUID, conn: Conn, _: ReadsRuns) -> list[StateEntry]:
    rows = await conn.fetch(
        "SELECT version, state FROM states WHERE flow_run_id = $1 ORDER BY version", run_id
    )
    if not rows and await get_flow_run(conn, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} does not exist")
    return [StateEntry.model_validate({**r["state"], "version": r["version"]}) for r in rows]


@router.post("/{run_id}/cancel", response_model=TransitionResult)
async def cancel(run_id: UUID, conn: Conn, ctx: Ctx, _: CanRun) -> TransitionResult:
    """Cancel a run: a waiting one at once; a started one through its worker (Cancelling)."""
    try:
        outcome = await cancel_flow_run(
            conn, run_id, default_lease_seconds=ctx.settings.default_lease_seconds
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.post("/{run_id}/retry", response_model=TransitionResult)
async def retry(run_id: UUID, conn: Conn, ctx: Ctx, _: CanRun) -> TransitionResult:
    """Run an ended deployment run again: back to Scheduled (AwaitingRetry), dispatched now."""
    try:
        outcome = await retry_flow_run(
            conn,
            run_id,
            default_lease_seconds=ctx.settings.default_lease_seconds,
            dispatch_within=ctx.settings.dispatch_lookahead_seconds,
        )
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except NotRetryable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(run_id: UUID, conn: Conn, _: IsAdmin) -> Response:
    """Delete an ended run, with its states, task runs and logs (an admin key)."""
    try:
        await delete_flow_run(conn, run_id)
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except NotRetryable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
