"""Deployments, and runs created from them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from baton_schemas.deployments import Deployment, DeploymentCreate, DeploymentRunCreate
from baton_schemas.limits import Name
from baton_schemas.runs import FlowRun

from ...db import deployments
from ...db.flow_runs import IdempotencyConflict
from ...db.job_variables import InvalidJobVariables
from ...db.pools import NotFound
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
