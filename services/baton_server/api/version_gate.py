"""Requests from an SDK of another version are refused before anything is done for them.

The SDK's HTTP client names its versions in headers (`baton_schemas.compat`). A client whose
envelopes this server does not read, or that does not read this server's, gets a 409 whose
message names both sides' versions and what to run instead, rather than a confusing error
halfway through a flow run. Requests without the headers (curl, the dashboard, older SDKs) are
not checked.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from baton_schemas import compat

from .gate import send_json

# A worker asks here first, and the route checks its versions itself, naming it a worker
_CHECKED_BY_ITS_ROUTE = frozenset({"/api/workers/connection"})
_VERSION = compat.VERSION_HEADER.encode()
_SCHEMA = compat.SCHEMA_HEADER.encode()
_MIN_SCHEMA = compat.MIN_SCHEMA_HEADER.encode()


def version_refusal(headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
    """Why this server cannot serve the client that sent `headers` (with the status to answer),
    or None."""
    schema = oldest = None
    version = "unknown"
    for name, value in headers:
        if name == _SCHEMA:
            schema = value
        elif name == _MIN_SCHEMA:
            oldest = value
        elif name == _VERSION:
            version = value.decode("latin-1")
    if schema is None:
        return None
    try:
        written = int(schema)
        reads = int(oldest) if oldest is not None else written
    except ValueError:
        return 400, f"unreadable {compat.SCHEMA_HEADER} or {compat.MIN_SCHEMA_HEADER} header: a number"
    refused = compat.refusal(
        client="client",
        client_version=version,
        client_schema=written,
        client_min=reads,
        server_version=compat.baton_version(),
        server_schema=compat.SCHEMA_VERSION,
        server_min=compat.MIN_SCHEMA_VERSION,
    )
    return None if refused is None else (409, refused)


class VersionGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in _CHECKED_BY_ITS_ROUTE
            and (refused := version_refusal(scope["headers"])) is not None
        ):
            await send_json(send, *refused)
            return
        await self.app(scope, receive, send)
