"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ..deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(ctx: Ctx, response: Response) -> dict[str, str]:
    checks: dict[str, str] = {}
    # on the services' pool: a connection is free there however busy the API is, so this says
    # whether PostgreSQL answers, not whether the API is loaded
    try:
        async with ctx.pool.acquire(timeout=2.0) as conn:
            await conn.fetchval("SELECT 1", timeout=2.0)
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unavailable: {exc.__class__.__name__}"
    # the stack this process really uses: its link (connected, not blocked or held back, the
    # topology declared) and the outbox that publishes on it
    checks["rabbitmq"] = ctx.broker.status()
    checks["outbox"] = "ok" if ctx.outbox.running else "unavailable: its publishing tasks are not running"
    if any(v != "ok" for v in checks.values()):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return checks
