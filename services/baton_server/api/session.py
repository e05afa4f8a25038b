"""Dashboard sessions: an API key kept in a cookie, and the CSRF token that changes need.

Signing in (`POST /ui/login`) checks the key like any request and sets `baton_session` to it:
HttpOnly (the page's scripts never see the key), SameSite=Strict (no other site's page sends
it), Secure when the request came over HTTPS (or `BATON_UI_COOKIE_SECURE` says so), Path=/.
The key gate reads the cookie when a request has no `Authorization` header, so every page and
action passes the same checks as the CLI: the key's scopes, its revocation.

A change (POST, PUT, PATCH, DELETE) authenticated by the cookie also needs `X-CSRF-Token`: a
digest of the session's key that the page learns from `GET /ui/session` (same origin only: no
CORS is served), and a browser from another origin that has the same cookie cannot compute.
Its `Origin`, when sent, must be this server's. Nothing is stored on the server, so any
replica of the API checks a session.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import Scope

SESSION_COOKIE = "baton_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(secret: str) -> str:
    return hashlib.sha256(b"baton-csrf:" + secret.encode()).hexdigest()


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def session_secret(scope: Scope) -> str | None:
    """The key in the session cookie, if the request has one."""
    cookies = _header(scope, b"cookie")
    if not cookies:
        return None
    for part in cookies.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value.strip('"')
    return None


def same_origin(scope: Scope) -> bool:
    """False when the request names an `Origin` that is not this server's."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    host = _header(scope, b"host") or ""
    _, _, rest = origin.partition("://")
    return rest.rstrip("/") == host


def csrf_refusal(scope: Scope, secret: str) -> str | None:
    """Why a change made with the session cookie is refused, or None if it may go on."""
    if scope["method"] in SAFE_METHODS:
        return None
    if not same_origin(scope):
        return "this change comes from another site's page (Origin does not match)"
    sent = _header(scope, CSRF_HEADER.encode())
    if sent is None or not hmac.compare_digest(sent, csrf_token(secret)):
        return f"a change made with the dashboard's session needs the {CSRF_HEADER!r} header of its page"
    return None
