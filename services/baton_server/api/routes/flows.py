"""Flows."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException

from baton_schemas.flows import Flow, FlowCreate

from ...db.flows import get_or_create_flow, list_flows, read_flow
from ..auth import ApiKey, Scope
from ..deps import CanRead, Conn, needs

router = APIRouter(prefix="/flows", tags=["flows"])


@router.post("", response_model=Flow)
async def register_flow(
    body: FlowCreate, conn: Conn, _: Annotated[ApiKey | None, needs(Scope.RUN, Scope.WORKER, Scope.DEPLOY)]
) -> Flow:
    """Register a flow by name (what runs and deployments of it refer to)."""
    return await get_or_create_flow(conn, body)


@router.get("", response_model=list[Flow])
async def get_flows(conn: Conn, _: CanRead) -> list[Flow]:
    return await list_flows(conn)


@router.get("/{flow_id}", response_model=Flow)
async def get_flow(flow_id: UUID, conn: Conn, _: CanRead) -> Flow:
    flow = await read_flow(conn, flow_id)
    if flow is None:
        raise HTTPException(404, f"flow {flow_id} does not exist")
    return flow
