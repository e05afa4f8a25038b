"""`GET /metrics` (Prometheus's text format) and the HTTP metrics of every request.

`/metrics` takes no API key, like `/health`: it shows counts, never a run's data (its labels
are states, routes and queue names). Turn it off with `BATON_METRICS_ENABLED=false`, or keep
it off the public network as one does a Prometheus target.

Requests are labelled by their route's template (`/api/flow_runs/{flow_run_id}`), never by the
path itself, so an id in a URL never makes a new series; a request no route took (a 404, or a
401 from the key gate) is labelled `other`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import FAST_BUCKETS, Snapshot

HTTP_REQUESTS = Counter(
    "baton_http_requests_total",
    "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "baton_http_request_duration_seconds",
    "Time to answer an HTTP request (to its last byte), by method and route.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)
OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=True)
async def metrics(request: Request) -> Response:
    """The server's metrics in Prometheus's text format."""
    snapshot: Snapshot | None = getattr(request.app.state, "metrics", None)
    if snapshot is not None:
        await snapshot.refresh()
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The template of the route that took the request (`/api/flow_runs/{run_id}`), or OTHER."""
    if scope.get("route") is None:
        return OTHER
    # FastAPI keeps the matched route's full template (its routers' prefixes included) here
    context: Any = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str) and template.startswith("/"):
        return template
    # else the path, each segment that is a path parameter's value replaced by its name
    names = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    return "/".join(f"{{{names[s]}}}" if s in names else s for s in scope["path"].split("/"))


class HttpMetrics:
    """Counts and times every HTTP request (the outermost middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = route_template(scope)
            method = scope.get("method", "")
            method = method if method in METHODS else OTHER
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_SECONDS.labels(method, template).observe(time.perf_counter() - started)
