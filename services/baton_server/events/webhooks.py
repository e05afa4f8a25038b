"""Webhooks: stored definitions, and what a call to `POST /hooks/{slug}` becomes.

A call is checked first (signature or token: 401 when wrong, before anything else is done),
then its template renders the event from the request; a template that fails, renders something
that is not JSON, or renders an invalid event is a 400 with the reason, and nothing is emitted.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
from pydantic import ValidationError

from baton_schemas.events import Event
from baton_schemas.webhooks import (
    DEFAULT_SIGNATURE_HEADERS,
    HmacCheck,
    SignatureStyle,
    TokenCheck,
    Webhook,
    WebhookCreate,
)

from ..db.types import Connection
from .signatures import verify_github, verify_stripe, verify_token
from .templates import RenderLimits, TemplateError, compile_template, render


class WebhookExists(ValueError):
    pass


class WebhookNotFound(LookupError):
    pass


class Unauthorized(Exception):
    """The request's signature or token is missing or wrong."""


class BadCall(ValueError):
    """The template could not make an event of this request; the message says why."""


def _webhook(row: Mapping[str, Any]) -> Webhook:
    return Webhook(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        description=row["description"],
        template=row["template"],
        check=row["check_kind"],
        signature_style=row["signature_style"],
        check_header=row["check_header"],
        enabled=row["enabled"],
        created=row["created"],
        updated=row["updated"],
    )


async def create_webhook(conn: Connection, create: WebhookCreate) -> Webhook:
    compile_template(create.template)  # TemplateError: refused before it is stored
    check = create.check
    kind = secret = style = header = tolerance = None
    if isinstance(check, HmacCheck):
        kind, secret, style = "hmac", check.secret, check.style.value
        header, tolerance = check.header or DEFAULT_SIGNATURE_HEADERS[check.style], check.tolerance_seconds
    elif isinstance(check, TokenCheck):
        kind, secret, header = "token", check.token, check.header
    try:
        row = await conn.fetchrow(
            """INSERT INTO webhooks (id, name, slug, description, template, check_kind, check_secret,
                   signature_style, check_header, tolerance_seconds, enabled)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *""",
            uuid.uuid4(),
            create.name,
            create.slug or secrets.token_hex(12),
            create.description,
            create.template,
            kind,
            secret,
            style,
            header,
            tolerance,
            create.enabled,
        )
    except asyncpg.UniqueViolationError as exc:
        what = "slug" if "slug" in str(exc) else "name"
        value = create.slug if what == "slug" else create.name
        raise WebhookExists(f"a webhook with the {what} {value!r} exists already") from exc
    assert row is not None
    return _webhook(row)


async def list_webhooks(conn: Connection) -> list[Webhook]:
    return [_webhook(r) for r in await conn.fetch("SELECT * FROM webhooks ORDER BY name")]


async def get_webhook(conn: Connection, name: str) -> Webhook:
    row = await conn.fetchrow("SELECT * FROM webhooks WHERE name = $1", name)
    if row is None:
        raise WebhookNotFound(f"webhook {name!r} does not exist")
    return _webhook(row)


async def delete_webhook(conn: Connection, name: str) -> None:
    if await conn.fetchval("DELETE FROM webhooks WHERE name = $1 RETURNING id", name) is None:
        raise WebhookNotFound(f"webhook {name!r} does not exist")


async def webhook_for_call(conn: Connection, slug: str) -> Mapping[str, Any] | None:
    """The enabled webhook at `slug`, with its secret."""
    row = await conn.fetchrow("SELECT * FROM webhooks WHERE slug = $1 AND enabled", slug)
    return row  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    content_type: str = ""


def check_call(webhook: Mapping[str, Any], call: Call, *, now: float | None = None) -> None:
    """Unauthorized unless the call carries the webhook's signature or token (if it has one)."""
    kind = webhook["check_kind"]
    if kind is None:
        return
    header = call.headers.get(str(webhook["check_header"]).lower())
    secret = webhook["check_secret"]
    if kind == "token":
        ok = verify_token(secret, header)
    elif webhook["signature_style"] == SignatureStyle.STRIPE.value:
        tolerance = float(webhook["tolerance_seconds"] or 300)
        ok = verify_stripe(
            secret, call.body, header, now=time.time() if now is None else now, tolerance=tolerance
        )
    else:
        ok = verify_github(secret, call.body, header)
    if not ok:
        what = "token" if kind == "token" else "signature"
        raise Unauthorized(f"missing or wrong {what} in the {webhook['check_header']} header")


def template_context(call: Call) -> dict[str, Any]:
    """What a template sees: `body` (JSON parsed, form fields, or the text), `raw_body`,
    `headers`, `query` and `method`."""
    text = call.body.decode("utf-8", errors="replace")
    body: Any = text
    content_type = call.content_type.lower()
    if "json" in content_type or (not content_type and text.lstrip()[:1] in ("{", "[")):
        try:
            body = orjson.loads(call.body)
        except orjson.JSONDecodeError as exc:
            raise BadCall(f"the body is not valid JSON: {exc}") from None
    elif content_type.startswith("application/x-www-form-urlencoded"):
        body = dict(parse_qsl(text, keep_blank_values=True))
    return {
        "body": body,
        "raw_body": text,
        "headers": dict(call.headers),
        "query": dict(call.query),
        "method": call.method,
    }


async def event_of_call(webhook: Mapping[str, Any], call: Call, limits: RenderLimits) -> Event:
    """The event a checked call makes, or BadCall."""
    try:
        rendered = await render(webhook["template"], template_context(call), limits)
    except TemplateError as exc:
        raise BadCall(f"the webhook's template failed: {exc}") from None
    try:
        fields = orjson.loads(rendered)
    except orjson.JSONDecodeError as exc:
        raise BadCall(f"the template did not render JSON ({exc}): {rendered[:200]!r}") from None
    if not isinstance(fields, dict):
        raise BadCall("the template must render a JSON object: the event")
    try:
        return Event.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise BadCall(f"the template rendered an invalid event: {problems}") from None
