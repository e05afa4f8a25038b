"""`baton server start`: the API, the tracker, the scheduler, the events service and the router
in one process (or one of them alone)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from typing import Protocol

from prometheus_client import start_http_server

from baton import _tracing

from .context import ServerContext
from .gc_tuning import tune_for_server
from .memory import MemoryReleaser
from .settings import ServerSettings

log = logging.getLogger("baton.server")

SERVICES = ("api", "tracker", "scheduler", "events", "router")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


# Each service's class, imported only by a process that runs it: a scheduler or router replica
# does not carry the API's FastAPI, Jinja2 and dashboard (about 20 MB of its RSS).
_CLASSES = {
    "api": "baton_server.api.service:ApiService",
    "tracker": "baton_server.tracker.service:TrackerService",
    "scheduler": "baton_server.scheduler.service:SchedulerService",
    "events": "baton_server.events.service:EventsService",
    "router": "baton_server.router.service:RouterService",
}
assert tuple(_CLASSES) == SERVICES


def build_services(ctx: ServerContext, names: tuple[str, ...]) -> list[Service]:
    services: list[Service] = []
    for name in names:
        if name not in _CLASSES:
            raise ValueError(f"unknown service {name!r}: choose from {', '.join(SERVICES)}")
        module, _, cls = _CLASSES[name].partition(":")
        services.append(getattr(importlib.import_module(module), cls)(ctx))
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
