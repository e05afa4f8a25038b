"""Global concurrency limits: manage them, and take, renew and release their slots.

Taking slots (`POST /concurrency_limits/acquire`) may wait up to `wait_seconds` on the server,
woken when slots are freed (`..concurrency.SlotWaiters`); no slots by then is a 423 with
`Retry-After`, and the client asks again. A waiting request holds no database connection.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from baton_schemas.concurrency import (
    AcquireSlots,
    ConcurrencyLease,
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    ConcurrencyLimitUpdate,
    RenewLease,
    SlotsAcquired,
    SlotsUnavailable,
)
from baton_schemas.limits import Name

from ...db import concurrency as db
from ..auth import ApiKey, Scope
from ..concurrency import SlotWaiters
from ..deps import CanDeploy, Conn, Ctx, DatabaseBusy, needs
from ..responses import OrjsonResponse

router = APIRouter(tags=["concurrency limits"])

# flows take slots with the key they run with: a worker's, or a person's
TakesSlots = Annotated[ApiKey | None, needs(Scope.RUN, Scope.WORKER, Scope.DEPLOY)]
ReadsLimits = Annotated[ApiKey | None, needs(Scope.READ, Scope.RUN, Scope.WORKER, Scope.DEPLOY)]
LimitName = Annotated[Name, Path(description="The limit's name, e.g. `db` or `tag:warehouse`.")]


def _not_found(exc: db.NotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.post("/concurrency_limits", response_model=ConcurrencyLimit, status_code=status.HTTP_201_CREATED)
async def create_limit(body: ConcurrencyLimitCreate, conn: Conn, _: CanDeploy) -> ConcurrencyLimit:
    try:
        return await db.create_limit(conn, body)
    except db.LimitExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("/concurrency_limits", response_model=list[ConcurrencyLimit])
async def list_limits(conn: Conn, _: ReadsLimits) -> list[ConcurrencyLimit]:
    return await db.list_limits(conn)


@router.get("/concurrency_limits/{name}", response_model=ConcurrencyLimit)
async def read_limit(name: LimitName, conn: Conn, _: ReadsLimits) -> ConcurrencyLimit:
    try:
        return await db.get_limit(conn, name)
    except db.NotFound as exc:
        raise _not_found(exc) from exc


@router.patch("/concurrency_limits/{name}", response_model=ConcurrencyLimit)
async def update_limit(
    name: LimitName, body: ConcurrencyLimitUpdate, conn: Conn, _: CanDeploy
) -> ConcurrencyLimit:
    try:
        return await db.update_limit(conn, name, body)
    except db.NotFound as exc:
        raise _not_found(exc) from exc


@router.delete("/concurrency_limits/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_limit(name: LimitName, conn: Conn, _: CanDeploy) -> Response:
    try:
        await db.delete_limit(conn, name)
    except db.NotFound as exc:
        raise _not_found(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/concurrency_limits/{name}/reset", response_model=ConcurrencyLimit)
async def reset_limit(name: LimitName, conn: Conn, _: CanDeploy) -> ConcurrencyLimit:
    try:
        return await db.reset_limit(conn, name)
    except db.NotFound as exc:
        raise _not_found(exc) from exc


async def _attempt(ctx: Any, body: AcquireSlots, first: bool) -> db.Attempt:
    try:
        conn = await ctx.api_pool.acquire(timeout=ctx.settings.db_acquire_timeout_seconds)
    except TimeoutError as exc:
        raise DatabaseBusy from exc
    try:
        return await db.try_acquire(conn, body, count_denied=first)
    except db.NotFound as exc:
        raise _not_found(exc) from exc
    except db.Unacquirable as exc:
        raise HTTPException(422, str(exc)) from exc
    finally:
        await ctx.api_pool.release(conn)


@router.post(
    "/concurrency_limits/acquire",
    response_model=SlotsAcquired,
    responses={423: {"model": SlotsUnavailable, "description": "No slots within `wait_seconds`."}},
)
async def acquire_slots(body: AcquireSlots, request: Request, ctx: Ctx, _: TakesSlots) -> Any:
    waiters: SlotWaiters = request.app.state.slot_waiters
    deadline = time.monotonic() + body.wait_seconds
    first = True
    while True:
        attempt = await _attempt(ctx, body, first)
        if attempt.acquired:
            return SlotsAcquired(
                lease_id=attempt.lease_id,
                limits=attempt.limits,
                missing=attempt.missing,
                expires=attempt.expires,
            )
        first = False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        until = attempt.retry_after if attempt.retry_after is not None else remaining
        await waiters.wait(attempt.full, max(min(remaining, until), 0.01))
    retry_after = attempt.retry_after if attempt.retry_after is not None else waiters.recheck_seconds
    retry_after = min(retry_after, waiters.recheck_seconds)
    full = ", ".join(repr(name) for name in attempt.full)
    body_out = SlotsUnavailable(
        detail=f"no free slot in {full} within {body.wait_seconds:g}s",
        retry_after_seconds=retry_after,
        limits=attempt.full,
    )
    return OrjsonResponse(
        body_out.model_dump(mode="json"),
        status_code=status.HTTP_423_LOCKED,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


@router.post("/concurrency_leases/{lease_id}/renew", response_model=ConcurrencyLease)
async def renew_lease(lease_id: uuid.UUID, body: RenewLease, conn: Conn, _: TakesSlots) -> ConcurrencyLease:
    expires = await db.renew_lease(conn, lease_id, body.lease_seconds)
    if expires is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"lease {lease_id} has expired or was released: its slots may be held by others now",
        )
    row = await conn.fetchrow("SELECT * FROM concurrency_leases WHERE id = $1", lease_id)
    assert row is not None
    return ConcurrencyLease(id=row["id"], slots=row["slots"], expires=row["expires"], created=row["created"])


@router.delete("/concurrency_leases/{lease_id}", status_code=status.HTTP_204_NO_CONTENT)
async def release_lease(lease_id: uuid.UUID, conn: Conn, _: TakesSlots) -> Response:
    await db.release_lease(conn, lease_id)  # idempotent: a lease released twice is released
    return Response(status_code=status.HTTP_204_NO_CONTENT)
