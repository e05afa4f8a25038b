"""The FastAPI application. The pools and broker live on `app.state`, made in the lifespan.

A request passes, in order: the key gate (its key is checked before anything else: `gate`), the
audit log (`audit`), the body size limit (`limits`), then the route, whose dependency checks
the key's scopes (`deps`) and lends it a connection of the API's pool.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from baton_schemas.envelopes import Logs, TaskRunStates

from ..context import ServerContext
from ..events.stream import StreamHub
from ..metrics import Snapshot
from ..settings import ServerSettings
from . import errors
from .audit import AuditLog, AuditTrail
from .concurrency import SlotWaiters
from .dashboard import data as dashboard_data
from .dashboard import pages as dashboard_pages
from .deps import raw_body_definitions
from .gate import KeyGate
from .limits import BodySizeLimit
from .metrics import HttpMetrics
from .metrics import router as metrics_router
from .openapi import document_scopes
from .responses import OrjsonResponse
from .routes import (
    access,
    artifacts,
    automations,
    backfill,
    concurrency,
    deployments,
    events,
    flow_runs,
    flows,
    health,
    logs,
    pauses,
    task_runs,
    variables,
    webhooks,
    work_pools,
)
from .tracing import RequestSpans
from .verifier import KeyVerifier
from .version_gate import VersionGate

# Newer FastAPI versions trace and measure requests themselves once a tracer provider is set;
# Baton's own spans (`tracing`) and metrics (`metrics`) are the documented ones: theirs off.
_NATIVE_TELEMETRY_OFF: dict[str, Any] = (
    {
        "telemetry": {
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }
    }
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(settings: ServerSettings, ctx: ServerContext | None = None) -> FastAPI:
    """An app that opens its own context, or uses `ctx` (when the API shares a process)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = ctx is None
        context = ctx or await ServerContext.open(settings, name="baton-api")
        app.state.ctx = context
        app.state.keys = KeyVerifier(
            context.api_pool,
            refresh_seconds=settings.api_key_refresh_seconds,
            acquire_timeout=settings.db_acquire_timeout_seconds,
        )
        app.state.audit = AuditTrail(context.api_pool, acquire_timeout=settings.db_acquire_timeout_seconds)
        app.state.event_stream = StreamHub(
            context.api_pool, settings.database_url, backfill_seconds=settings.events_stream_backfill_seconds
        )
        app.state.metrics = Snapshot(context, max_age=settings.metrics_max_age_seconds)
        app.state.slot_waiters = SlotWaiters(context.api_pool, settings.database_url)
        app.state.keys.start()
        app.state.audit.start()
        app.state.slot_waiters.start()
        try:
            yield
        finally:
            await app.state.slot_waiters.close()
            await app.state.event_stream.close()
            await app.state.keys.stop()
            await app.state.audit.stop(grace=settings.shutdown_grace_seconds)
            if own:
                await context.close()

    app = FastAPI(
        **_NATIVE_TELEMETRY_OFF,
        title="Baton",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        openapi_url="/api/openapi.json",
        docs_url=None,  # served from local assets by the dashboard's pages
        redoc_url=None,
    )
    errors.install(app)
    # the last added runs first
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(AuditLog)
    app.add_middleware(KeyGate, auth_required=settings.auth_required, docs_public=settings.api_docs_public)
    app.add_middleware(VersionGate)  # before the key: a client of another version learns why
    app.add_middleware(RequestSpans)
    if settings.metrics_enabled:
        app.add_middleware(HttpMetrics)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(raw_body_definitions([TaskRunStates, Logs]))
            document_scopes(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.closing = asyncio.Event()  # set by end_streams
    app.include_router(health.router)
    if settings.metrics_enabled:
        app.include_router(metrics_router)
    for module in (flows, flow_runs, task_runs, logs, work_pools, deployments, access, events, webhooks):
        app.include_router(module.router, prefix="/api")
    app.include_router(backfill.router, prefix="/api")
    app.include_router(webhooks.hooks)
    app.include_router(automations.router, prefix="/api")
    app.include_router(variables.router, prefix="/api")
    app.include_router(artifacts.router, prefix="/api")
    app.include_router(concurrency.router, prefix="/api")
    app.include_router(pauses.router, prefix="/api")
    app.include_router(dashboard_data.router)
    dashboard_pages.install(app)
    return app


def end_streams(app: FastAPI) -> None:
    """The server is stopping: every open stream (events, a run's logs) ends now with
    `event: shutdown`, instead of holding the shutdown until uvicorn's graceful timeout cancels
    it. Called before uvicorn is told to exit; requests of other kinds finish as usual."""
    app.state.closing.set()
    hub: StreamHub | None = getattr(app.state, "event_stream", None)
    if hub is not None:
        hub.end_streams()
