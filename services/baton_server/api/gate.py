"""The first thing a request meets: its API key is checked before anything else is done for it.

An ASGI middleware, outside FastAPI's routing, so the check comes before the body is read (a
request without a key gets 401 whatever its body) and before any database connection is taken
for the request (the check itself needs none: see `verifier`). What a key may do (its scopes)
is checked by each route's dependency (`deps.CanRead`, `deps.CanRun`...).

The key comes from `Authorization: Bearer`, or else from the dashboard's session cookie; a
change made with the cookie must also carry the page's CSRF token (`session`).

Paths outside /api (`/health`, `/ready`, the dashboard's own assets) take no key; nor do the
OpenAPI document and the docs page while `api_docs_public` is set, nor the paths in
`PUBLIC_PREFIXES` (their routes authenticate callers their own way, e.g. webhooks by signature).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from .session import csrf_refusal, session_secret
from .verifier import KeysUnavailable, KeyVerifier

API_PREFIX = "/api"
DOCS_PATHS = frozenset({"/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"})
PUBLIC_PREFIXES: tuple[str, ...] = ()  # e.g. "/api/webhooks/": callers authenticated otherwise
RETRY_AFTER_SECONDS = 2

KEY_STATE = "api_key"  # request.state.api_key: the verified ApiKey


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def bearer_secret(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            return secret.strip() or None if scheme.lower() == "bearer" else None
    return None


class KeyGate:
    def __init__(self, app: ASGIApp, *, auth_required: bool, docs_public: bool) -> None:
        self.app = app
        self.auth_required = auth_required
        self.docs_public = docs_public

    def _needs_key(self, path: str) -> bool:
        if not self.auth_required or not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            return False
        if path in DOCS_PATHS:
            return not self.docs_public
        return not path.startswith(PUBLIC_PREFIXES) if PUBLIC_PREFIXES else True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        secret = bearer_secret(scope)
        from_cookie = secret is None
        if from_cookie:
            secret = session_secret(scope)
        if secret is None:
            await send_json(
                send,
                401,
                "an API key is required: send 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        app: Any = scope["app"]
        verifier: KeyVerifier = app.state.keys
        try:
            key = await verifier.verify(secret)
        except KeysUnavailable:
            await send_json(
                send,
                503,
                "API keys cannot be checked now (the database is unavailable); retry later",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            return
        if key is None:
            await send_json(send, 401, "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
            return
        if from_cookie and (refused := csrf_refusal(scope, secret)) is not None:
            await send_json(send, 403, refused)
            return
        scope.setdefault("state", {})[KEY_STATE] = key
        await self.app(scope, receive, send)
