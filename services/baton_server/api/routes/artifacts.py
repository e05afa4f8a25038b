"""Artifacts: made from inside runs (`run` or `worker`: the keys runs report with), read with
`read`. A key's artifacts are its history; `latest=true` lists the newest of each key."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response, status

from baton_schemas.artifacts import Artifact, ArtifactCreate, ArtifactType

from ...db import artifacts as db
from ..auth import ApiKey, Scope
from ..deps import CanDeploy, CanRead, Conn, needs

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


@router.post("", response_model=Artifact, status_code=status.HTTP_201_CREATED)
async def create_artifact(
    body: ArtifactCreate, conn: Conn, _: Annotated[ApiKey | None, needs(Scope.RUN, Scope.WORKER)]
) -> Artifact:
    return await db.create_artifact(conn, body)


@router.get("", response_model=list[Artifact])
async def list_artifacts(
    conn: Conn,
    _: CanRead,
    key: str | None = None,
    flow_run_id: UUID | None = None,
    task_run_id: UUID | None = None,
    type: ArtifactType | None = None,
    latest: Annotated[bool, Query(description="Only the newest artifact of each key.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Artifact]:
    """Newest first."""
    return await db.list_artifacts(
        conn,
        key=key,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        type=type,
        latest=latest,
        limit=limit,
    )


@router.get("/{artifact_id}", response_model=Artifact)
async def read_artifact(artifact_id: UUID, conn: Conn, _: CanRead) -> Artifact:
    artifact = await db.read_artifact(conn, artifact_id)
    if artifact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no artifact {artifact_id}")
    return artifact


@router.delete("/key/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_key(key: str, conn: Conn, _: CanDeploy) -> Response:
    """Every artifact of a key."""
    if not await db.delete_artifacts(conn, key=key):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no artifact has the key {key!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{artifact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_artifact(artifact_id: UUID, conn: Conn, _: CanDeploy) -> Response:
    if not await db.delete_artifacts(conn, artifact_id=artifact_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no artifact {artifact_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
