"""The dashboard's HTML, its assets, signing in and out, and the API docs page.

No build step and nothing fetched at run time: `static/` holds plain HTML, CSS and JavaScript
modules, and the docs page uses the copy of Swagger UI that `fastapi-offline` ships.
"""

from __future__ import annotations

import html
import ipaddress
from pathlib import Path
from urllib.parse import parse_qs

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..auth import Scope, scope_list
from ..session import SESSION_COOKIE, same_origin
from ..verifier import KeysUnavailable, KeyVerifier

STATIC = Path(__file__).parent / "static"
SWAGGER = Path(fastapi_offline.__file__).parent / "static"
MAX_KEY_CHARS = 200

# what a page may load and call: its own origin only
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-cache",
}
# Swagger UI starts itself with an inline script
DOCS_HEADERS = {**SECURITY_HEADERS, "content-security-policy": "frame-ancestors 'none'"}

router = APIRouter(include_in_schema=False)


def _page(name: str, **values: str) -> HTMLResponse:
    text = (STATIC / name).read_text()
    for placeholder, value in values.items():
        text = text.replace(f"<!--{placeholder}-->", html.escape(value))
    return HTMLResponse(text, headers=SECURITY_HEADERS)


@router.get("/")
async def index() -> HTMLResponse:
    return _page("index.html")


@router.get("/ui/login")
async def login_page(request: Request) -> Response:
    if not request.app.state.ctx.settings.auth_required:
        return RedirectResponse("/", status_code=303)
    return _page("login.html")


def _secure(request: Request) -> bool:
    chosen: bool | None = request.app.state.ctx.settings.ui_cookie_secure
    if chosen is not None:
        return chosen
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(message: str, status: int) -> HTMLResponse:
    page = _page("login.html", error=message)
    page.status_code = status
    return page


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """A form with `key`: checked like any request's key; a key that cannot read is refused."""
    if not same_origin(request.scope):
        return _refused("sign in from this server's own page", 403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("key") or [""])[0].strip()
    if not secret:
        return _refused("give an API key", 400)
    if len(secret) > MAX_KEY_CHARS or not secret.isascii() or any(c in secret for c in ';,"\\ '):
        return _refused("unknown or revoked API key", 401)
    verifier: KeyVerifier = request.app.state.keys
    try:
        key = await verifier.verify(secret)
    except KeysUnavailable:
        return _refused("API keys cannot be checked now (the database is unavailable); retry later", 503)
    if key is None:
        return _refused("unknown or revoked API key", 401)
    if not key.allows(Scope.READ):
        scopes = ", ".join(scope_list(key.scopes))
        return _refused(f"this key has scope {scopes}: the dashboard needs read (or admin)", 403)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(request.app.state.ctx.settings.ui_session_hours * 3600),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/ui/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/docs")
async def docs(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="Baton API",
        swagger_js_url="/ui/swagger/swagger-ui-bundle.js",
        swagger_css_url="/ui/swagger/swagger-ui.css",
        swagger_favicon_url="/ui/static/favicon.svg",
        oauth2_redirect_url="/api/docs/oauth2-redirect",
        swagger_ui_parameters={"persistAuthorization": True},
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/docs")
async def docs_elsewhere() -> Response:
    """FastAPI's usual place for its docs: Baton's live under /api."""
    return RedirectResponse("/api/docs", status_code=307)


@router.get("/api/docs/oauth2-redirect")
async def docs_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.mount("/ui/swagger", StaticFiles(directory=SWAGGER), name="ui-swagger")


def static_files() -> list[str]:
    """The app's shipped files, relative to the package (for the packaging test)."""
    return sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file())
