"""API keys and the audit log: admin only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from baton_schemas.access import ApiKeyCreate, ApiKeyCreated, ApiKeyInfo, AuditPage
from baton_schemas.limits import Name

from ...db.audit import list_audit
from ..auth import create_api_key, list_api_keys, parse_scopes, revoke_api_key, scope_list
from ..deps import Conn, IsAdmin
from ..verifier import KeyVerifier

router = APIRouter(tags=["access"])


@router.get("/api_keys", response_model=list[ApiKeyInfo])
async def list_keys(conn: Conn, _: IsAdmin, include_revoked: bool = False) -> list[ApiKeyInfo]:
    return [
        ApiKeyInfo.model_validate(dict(r)) for r in await list_api_keys(conn, include_revoked=include_revoked)
    ]


@router.post("/api_keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_key(body: ApiKeyCreate, request: Request, conn: Conn, _: IsAdmin) -> ApiKeyCreated:
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    key, secret = await create_api_key(conn, name=body.name, scopes=scopes)
    row = await conn.fetchrow("SELECT prefix, created FROM api_keys WHERE id = $1", key.id)
    assert row is not None
    request.state.audit_detail = {"key_id": str(key.id), "name": key.name, "scopes": scope_list(scopes)}
    return ApiKeyCreated(
        id=key.id,
        name=key.name,
        prefix=row["prefix"],
        scopes=scope_list(scopes),
        created=row["created"],
        secret=secret,
    )


@router.delete("/api_keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: UUID, request: Request, conn: Conn, _: IsAdmin) -> Response:
    if not await revoke_api_key(conn, key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no usable API key {key_id}")
    verifier: KeyVerifier = request.app.state.keys
    verifier.forget(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit", response_model=AuditPage)
async def audit(
    conn: Conn,
    _: IsAdmin,
    key_id: UUID | None = None,
    key_name: Annotated[Name | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The changes made through the API (and the server's CLI), newest first."""
    if cursor is not None and not cursor.isdigit():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "cursor is not one this API returned")
    items, next_cursor = await list_audit(
        conn,
        key_id=key_id,
        key_name=key_name,
        since=since,
        until=until,
        before_id=int(cursor) if cursor else None,
        limit=limit,
    )
    return AuditPage(items=items, next_cursor=next_cursor)
