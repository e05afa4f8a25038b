"""Deployments, and runs created from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from baton_schemas import utcnow
from baton_schemas.deployments import Deployment, DeploymentCreate, DeploymentRunCreate
from baton_schemas.limits import Name
from baton_schemas.runs import FlowRun
from baton_schemas.schedules import MAX_UPCOMING, DeploymentSchedule, UpcomingSlots
from baton_schemas.slots import jitter_offset, next_slots

from ...db import deployments, schedules
from ...db.flow_runs import IdempotencyConflict
from ...db.job_variables import InvalidJobVariables
from ...db.pools import NotFound
from ...db.types import Connection
from ..auth import ApiKey, Scope
from ..deps import CanDeploy, CanRead, Conn, Ctx, needs, require

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.post("", response_model=Deployment, status_code=status.HTTP_201_CREATED)
async def upsert(body: DeploymentCreate, conn: Conn, response: Response, _: CanDeploy) -> Deployment:
    try:
        deployment, created = await deployments.upsert_deployment(conn, body)
    except NotFound as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except deployments.InvalidParameters as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return deployment


@router.get("", response_model=list[Deployment])
async def list_all(
    conn: Conn, _: CanRead, flow_name: Annotated[Name | None, Query()] = None
) -> list[Deployment]:
    return await deployments.list_deployments(conn, flow_name)


# who reads a deployment: readers, those who start its runs, those who change it
ReadsDeployments = Annotated[ApiKey | None, needs(Scope.READ, Scope.RUN, Scope.DEPLOY)]


@router.get("/name/{flow_name}/{deployment_name}", response_model=Deployment)
async def read_by_name(
    flow_name: Annotated[Name, Path()],
    deployment_name: Annotated[Name, Path()],
    conn: Conn,
    _: ReadsDeployments,
) -> Deployment:
    try:
        return await deployments.get_deployment_by_name(conn, flow_name, deployment_name)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/{deployment_id}", response_model=Deployment)
async def read(deployment_id: UUID, conn: Conn, _: ReadsDeployments) -> Deployment:
    try:
        return await deployments.get_deployment(conn, deployment_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.delete("/{deployment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(deployment_id: UUID, conn: Conn, _: CanDeploy) -> Response:
    try:
        await deployments.delete_deployment(conn, deployment_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{deployment_id}/runs", response_model=FlowRun, status_code=status.HTTP_201_CREATED)
async def create_run(
    deployment_id: UUID,
    body: DeploymentRunCreate,
    conn: Conn,
    ctx: Ctx,
    response: Response,
    key: Annotated[ApiKey | None, needs(Scope.RUN)],
) -> FlowRun:
    """A run of the deployment (a `run` key). Job variables need `deploy`: they decide what the
    worker executes."""
    if body.job_variables:
        require(key, Scope.DEPLOY, "setting job variables")
    try:
        deployment = await deployments.get_deployment(conn, deployment_id)
        run, rows, created = await deployments.create_deployment_run(
            conn, deployment, body, dispatch_within=ctx.settings.dispatch_lookahead_seconds
        )
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (deployments.InvalidParameters, InvalidJobVariables) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors) from exc
    except IdempotencyConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    ctx.outbox.sent_after_commit(rows)
    if not created:
        response.status_code = status.HTTP_200_OK
    return run


# --- schedules, and pausing the whole deployment ---------------------------------------------

ScheduleRef = Annotated[str, Path(min_length=1, max_length=100, description="The schedule's slug or id.")]


@router.get("/{deployment_id}/schedules", response_model=list[DeploymentSchedule])
async def list_schedules(deployment_id: UUID, conn: Conn, _: ReadsDeployments) -> list[DeploymentSchedule]:
    try:
        return await schedules.read_schedules(conn, deployment_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/{deployment_id}/schedules/upcoming", response_model=list[UpcomingSlots])
async def upcoming(
    deployment_id: UUID,
    conn: Conn,
    _: ReadsDeployments,
    n: Annotated[int, Query(ge=1, le=MAX_UPCOMING, description="How many times per schedule.")] = 5,
    after: Annotated[datetime | None, Query(description="Now if unset; a time with its offset.")] = None,
) -> list[UpcomingSlots]:
    """The next `n` slots of each schedule, and when each run starts (its slot plus its jitter),
    computed as the scheduler does. Paused schedules are listed too, with `active` false."""
    if after is not None and after.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "after: give a time with its offset (…Z)")
    try:
        items = await schedules.read_schedules(conn, deployment_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    start = after or utcnow()
    answer = []
    for item in items:
        slots = next_slots(item.schedule, start, n)
        answer.append(
            UpcomingSlots(
                id=item.id,
                slug=item.slug,
                active=item.active,
                slots=slots,
                starts=[slot + jitter_offset(item, slot) for slot in slots],
            )
        )
    return answer


@router.post("/{deployment_id}/schedules/{schedule}/pause", response_model=DeploymentSchedule)
async def pause_schedule(
    deployment_id: UUID, schedule: ScheduleRef, conn: Conn, _: CanDeploy
) -> DeploymentSchedule:
    """No new runs from this schedule; those it made that have not started are removed."""
    return await _set_active(conn, deployment_id, schedule, active=False)


@router.post("/{deployment_id}/schedules/{schedule}/resume", response_model=DeploymentSchedule)
async def resume_schedule(
    deployment_id: UUID, schedule: ScheduleRef, conn: Conn, _: CanDeploy
) -> DeploymentSchedule:
    return await _set_active(conn, deployment_id, schedule, active=True)


async def _set_active(conn: Connection, deployment_id: UUID, ref: str, *, active: bool) -> DeploymentSchedule:
    try:
        return await schedules.set_active(conn, deployment_id, ref, active)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.delete("/{deployment_id}/schedules/{schedule}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(deployment_id: UUID, schedule: ScheduleRef, conn: Conn, _: CanDeploy) -> Response:
    """Remove the schedule; the runs it made that have not started go with it. A later deploy
    that lists it again brings it back (with a new id)."""
    try:
        await schedules.remove(conn, deployment_id, schedule)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{deployment_id}/pause", response_model=Deployment)
async def pause(deployment_id: UUID, conn: Conn, _: CanDeploy) -> Deployment:
    """No new scheduled runs while paused; runs already started go on."""
    return await _set_paused(conn, deployment_id, paused=True)


@router.post("/{deployment_id}/resume", response_model=Deployment)
async def resume(deployment_id: UUID, conn: Conn, _: CanDeploy) -> Deployment:
    return await _set_paused(conn, deployment_id, paused=False)


async def _set_paused(conn: Connection, deployment_id: UUID, *, paused: bool) -> Deployment:
    try:
        await schedules.set_paused(conn, deployment_id, paused)
        return await deployments.get_deployment(conn, deployment_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
