"""Webhooks: a URL (`POST /hooks/{slug}`) that turns any request into one event.

A webhook's template (Jinja2, rendered in its sandbox) sees `body` (parsed JSON, form fields, or
the text), `raw_body`, `headers` (lower-case names), `query` and `method`, and renders the event
as JSON. A request is checked by an HMAC-SHA256 signature (GitHub's `X-Hub-Signature-256:
sha256=<hex>` or Stripe's `Stripe-Signature: t=<unix time>,v1=<hex>`) or a shared token in a
header; a webhook with neither relies on its random slug alone.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel

MAX_TEMPLATE_CHARS = 64 * 1024
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,99}$"


class SignatureStyle(StrEnum):
    GITHUB = "github"  # X-Hub-Signature-256: sha256=<hex of HMAC(secret, body)>
    STRIPE = "stripe"  # Stripe-Signature: t=<ts>,v1=<hex of HMAC(secret, "<ts>.<body>")>


DEFAULT_SIGNATURE_HEADERS = {
    SignatureStyle.GITHUB: "X-Hub-Signature-256",
    SignatureStyle.STRIPE: "Stripe-Signature",
}
DEFAULT_TOKEN_HEADER = "X-Baton-Token"


class HmacCheck(ClientModel):
    kind: Literal["hmac"] = "hmac"
    secret: str = Field(min_length=8, max_length=1024)
    style: SignatureStyle = SignatureStyle.GITHUB
    header: str | None = Field(default=None, description="The style's usual header if unset.")
    tolerance_seconds: int = Field(
        default=300, ge=1, description="Stripe style: how old the signed timestamp may be."
    )


class TokenCheck(ClientModel):
    kind: Literal["token"] = "token"
    token: str = Field(min_length=8, max_length=1024)
    header: str = Field(
        default=DEFAULT_TOKEN_HEADER, description="Its value is the token, or 'Bearer <token>'."
    )


RequestCheck = Annotated[HmacCheck | TokenCheck, Field(discriminator="kind")]


class WebhookCreate(ClientModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    slug: str | None = Field(
        default=None, pattern=SLUG_PATTERN, description="The URL's last part; random if unset."
    )
    description: str | None = None
    template: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    check: RequestCheck | None = None
    enabled: bool = True


class Webhook(BatonModel):
    """A webhook as the API shows it: never its secret or token."""

    id: UUID
    name: str
    slug: str
    description: str | None = None
    template: str
    check: Literal["hmac", "token"] | None = None
    signature_style: SignatureStyle | None = None
    check_header: str | None = None
    enabled: bool = True
    created: datetime
    updated: datetime


__all__ = [
    "DEFAULT_SIGNATURE_HEADERS",
    "DEFAULT_TOKEN_HEADER",
    "MAX_TEMPLATE_CHARS",
    "HmacCheck",
    "RequestCheck",
    "SignatureStyle",
    "TokenCheck",
    "Webhook",
    "WebhookCreate",
]
