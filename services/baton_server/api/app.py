"""The FastAPI application. The pool and broker live on `app.state`, made in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from baton_schemas.envelopes import Logs, TaskRunStates

from ..context import ServerContext
from ..events.stream import StreamHub
from ..settings import ServerSettings
from .auth import KeyVerifier
from .deps import raw_body_definitions
from .limits import BodySizeLimit
from .responses import OrjsonResponse
from .routes import deployments, events, flow_runs, flows, health, logs, task_runs, webhooks, work_pools


def create_app(settings: ServerSettings, ctx: ServerContext | None = None) -> FastAPI:
    """An app that opens its own context, or uses `ctx` (when the API shares a process)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = ctx is None
        context = ctx or await ServerContext.open(settings, name="baton-api")
        app.state.ctx = context
        app.state.keys = KeyVerifier(context.pool)
        app.state.event_stream = StreamHub(
            context.pool, settings.database_url, backfill_seconds=settings.events_stream_backfill_seconds
        )
        try:
            yield
        finally:
            await app.state.event_stream.close()
            if own:
                await context.close()

    app = FastAPI(
        title="Baton",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(raw_body_definitions([TaskRunStates, Logs]))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    for module in (flows, flow_runs, task_runs, logs, work_pools, deployments, events, webhooks):
        app.include_router(module.router, prefix="/api")
    app.include_router(webhooks.hooks)
    return app
