"""Automations: a trigger and its actions. Changing them needs `deploy` (they start runs and
call URLs); reading them, `read`.

A deployment's triggers are named `flow/deployment:trigger-N`: names may hold `/`, so the name is
a `path` parameter, and the routes with a suffix (`/pause`, `/firings`) come first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from baton_schemas.automations import Automation, AutomationCreate, FiringPage

from ...db import automations
from ...db.pools import NotFound
from ...router.validation import InvalidAutomation, check_automation
from ..deps import CanDeploy, CanRead, Conn

router = APIRouter(prefix="/automations", tags=["automations"])


def _not_found(exc: NotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


async def _checked(conn: Conn, body: AutomationCreate) -> None:
    try:
        await check_automation(conn, body)
    except InvalidAutomation as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors) from exc


@router.post("/{name:path}/pause", response_model=Automation)
async def pause(name: str, conn: Conn, _: CanDeploy) -> Automation:
    try:
        return await automations.set_enabled(conn, name, False)
    except NotFound as exc:
        raise _not_found(exc) from exc


@router.post("/{name:path}/resume", response_model=Automation)
async def resume(name: str, conn: Conn, _: CanDeploy) -> Automation:
    try:
        return await automations.set_enabled(conn, name, True)
    except NotFound as exc:
        raise _not_found(exc) from exc


@router.get("/{name:path}/firings", response_model=FiringPage)
async def firings(
    name: str, conn: Conn, _: CanRead, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> FiringPage:
    """Newest first: when it fired, on which events, and what each action did."""
    try:
        automation = await automations.get_automation(conn, name)
    except NotFound as exc:
        raise _not_found(exc) from exc
    return FiringPage(items=await automations.list_firings(conn, automation.id, limit))


@router.post("", response_model=Automation, status_code=status.HTTP_201_CREATED)
async def create(body: AutomationCreate, conn: Conn, _: CanDeploy) -> Automation:
    await _checked(conn, body)
    try:
        return await automations.create_automation(conn, body)
    except automations.AutomationExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("", response_model=list[Automation])
async def list_all(conn: Conn, _: CanRead) -> list[Automation]:
    return await automations.list_automations(conn)


@router.get("/{name:path}", response_model=Automation)
async def read(name: str, conn: Conn, _: CanRead) -> Automation:
    try:
        return await automations.get_automation(conn, name)
    except NotFound as exc:
        raise _not_found(exc) from exc


@router.put("/{name:path}", response_model=Automation)
async def replace(name: str, body: AutomationCreate, conn: Conn, _: CanDeploy) -> Automation:
    """Change an automation in place: its id, windows and firings are kept."""
    await _checked(conn, body)
    try:
        return await automations.replace_automation(conn, name, body)
    except NotFound as exc:
        raise _not_found(exc) from exc


@router.delete("/{name:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(name: str, conn: Conn, _: CanDeploy) -> Response:
    try:
        await automations.delete_automation(conn, name)
    except NotFound as exc:
        raise _not_found(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
