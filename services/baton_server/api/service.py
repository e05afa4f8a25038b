"""The API as a service of `baton server start`: uvicorn serving the app, stopped within its
graceful timeout (streams end at once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from ..context import ServerContext
from .app import create_app, end_streams

log = logging.getLogger("baton.server")


class ApiService:
    name = "api"

    def __init__(self, ctx: ServerContext) -> None:
        settings = ctx.settings
        self._app = create_app(settings, ctx)
        config = uvicorn.Config(
            self._app,
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's records go through the process's one format
            access_log=False,
            lifespan="on",
            # requests still running (calls stuck behind an overloaded database) get this long
            # to finish at shutdown, then are cancelled; streams end at once (end_streams)
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self._task: asyncio.Task[None] | None = None
        self._grace = settings.shutdown_grace_seconds

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (port in use, ...)
                raise RuntimeError("the API stopped while starting")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        end_streams(self._app)
        self._server.should_exit = True
        if self._task is None:
            return
        # uvicorn cancels what outlives its graceful timeout; this bounds the rest (lifespan)
        done, _ = await asyncio.wait({self._task}, timeout=2 * self._grace + 5)
        if not done:
            log.warning("the API did not stop within %.0f s: stopping it now", 2 * self._grace + 5)
            self._server.force_exit = True
            self._task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
