"""`baton server start`: the API, the tracker, the scheduler, the events service and the router
in one process (or one of them alone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

import uvicorn
from prometheus_client import start_http_server

from baton import _tracing

from .api.app import create_app, end_streams
from .context import ServerContext
from .events.service import EventsService
from .gc_tuning import tune_for_server
from .memory import MemoryReleaser
from .router.service import RouterService
from .scheduler.service import SchedulerService
from .settings import ServerSettings
from .tracker.service import TrackerService

log = logging.getLogger("baton.server")

SERVICES = ("api", "tracker", "scheduler", "events", "router")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


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


def build_services(ctx: ServerContext, names: tuple[str, ...]) -> list[Service]:
    services: list[Service] = []
    for name in names:
        if name == "api":
            services.append(ApiService(ctx))
        elif name == "tracker":
            services.append(TrackerService(ctx))
        elif name == "scheduler":
            services.append(SchedulerService(ctx))
        elif name == "events":
            services.append(EventsService(ctx))
        elif name == "router":
            services.append(RouterService(ctx))
        else:
            raise ValueError(f"unknown service {name!r}: choose from {', '.join(SERVICES)}")
    return services


async def serve(settings: ServerSettings, names: tuple[str, ...] = SERVICES) -> None:
    """Run until SIGTERM or SIGINT, then stop every service within its grace period."""
    if _tracing.setup("server"):
        log.info("traces on: exported over OTLP to %s", _tracing.endpoint())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ctx = await ServerContext.open(settings, name=f"baton-server[{','.join(names)}]")
    services = build_services(ctx, names)
    started: list[Service] = []
    releaser = MemoryReleaser()
    try:
        for service in services:
            await service.start()
            started.append(service)
        if "api" not in names and settings.metrics_port is not None:
            # no /metrics in this process: its counters on a port of their own
            start_http_server(settings.metrics_port, addr=settings.metrics_host)
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        tune_for_server()
        releaser.start()
        log.info("baton server running: %s", ", ".join(s.name for s in started))
        if "api" in names:
            log.info("API on http://%s:%d/api", settings.api_host, settings.api_port)
        await stop.wait()
        log.info("stopping")
    finally:
        await releaser.stop()
        # the API first: no new request reaches a tracker or scheduler that is stopping; then
        # the others in the reverse order of their start, each within a bound
        order = sorted(reversed(started), key=lambda service: service.name != "api")
        bound = 2 * settings.shutdown_grace_seconds + 5
        for service in order:
            try:
                async with asyncio.timeout(bound):
                    await service.stop()
                log.info("%s stopped", service.name)
            except TimeoutError:
                log.warning("%s did not stop within %.0f s: left behind", service.name, bound)
            except Exception:
                log.exception("%s failed to stop cleanly", service.name)
        await ctx.close()
        log.info("stopped")
