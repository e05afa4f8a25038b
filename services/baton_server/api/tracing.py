"""A server span per HTTP request while traces are on, child of the caller's `traceparent`.

A run created by the request joins its trace (`db.flow_runs` stores the current span's
traceparent). Off, a request costs one attribute read here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton import _tracing

from .metrics import route_template


class RequestSpans:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        method = scope.get("method", "")
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        parent = _tracing.extract(headers)
        with _tracing.span(f"{method} {scope['path']}", parent=parent, kind="SERVER") as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                span.update_name(f"{method} {route_template(scope)}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.response.status_code", status)
