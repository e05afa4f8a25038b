"""Variables: a small JSON key-value store. Reading needs `read` (or `run`, `worker`, `deploy`:
a flow reads its configuration), writing needs `deploy` (a variable may decide what runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from baton_schemas.variables import StoredVariable, VariableCreate, VariableWrite, check_variable_name

from ...db import variables as db
from ..auth import ApiKey, Scope
from ..deps import CanDeploy, Conn, needs

router = APIRouter(prefix="/variables", tags=["variables"])

CanReadVariables = Annotated[ApiKey | None, needs(Scope.READ, Scope.RUN, Scope.WORKER, Scope.DEPLOY)]


def _name(name: str) -> str:
    try:
        return check_variable_name(name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.post("", response_model=StoredVariable, status_code=status.HTTP_201_CREATED)
async def create_variable(body: VariableCreate, conn: Conn, _: CanDeploy) -> StoredVariable:
    """A new variable; 409 if one of that name exists (PUT overwrites)."""
    try:
        return await db.create_variable(conn, body.name, body.value, body.tags)
    except db.VariableExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.put("/{name}", response_model=StoredVariable)
async def write_variable(
    name: str, body: VariableWrite, conn: Conn, _: CanDeploy, response: Response
) -> StoredVariable:
    """Create the variable, or overwrite its value and tags (201 if created, else 200)."""
    variable, created = await db.write_variable(conn, _name(name), body.value, body.tags)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return variable


@router.get("", response_model=list[StoredVariable])
async def list_variables(
    conn: Conn,
    _: CanReadVariables,
    tag: Annotated[list[str] | None, Query(description="Only variables with every tag given.")] = None,
    prefix: Annotated[str | None, Query(description="Only names that begin so.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[StoredVariable]:
    return await db.list_variables(conn, tag=tag, prefix=prefix, limit=limit)


@router.get("/{name}", response_model=StoredVariable)
async def read_variable(name: str, conn: Conn, _: CanReadVariables) -> StoredVariable:
    variable = await db.read_variable(conn, name)
    if variable is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no variable named {name!r}")
    return variable


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(name: str, conn: Conn, _: CanDeploy) -> Response:
    if not await db.delete_variable(conn, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no variable named {name!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
