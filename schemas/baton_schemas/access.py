"""Who may do what: API keys and their scopes, and the audit log of the changes they made."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import Name
from .pages import Page

SCOPES = ("read", "events", "run", "worker", "deploy", "admin")


class ApiKeyCreate(ClientModel):
    name: Name
    scopes: list[str] = Field(min_length=1, description=f"Any of: {', '.join(SCOPES)}.")


class ApiKeyInfo(BatonModel):
    id: UUID
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise a key by.")
    scopes: list[str]
    created: datetime
    revoked: bool = False
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyInfo):
    secret: str = Field(description="Shown once, never stored: send it as 'Authorization: Bearer <secret>'.")


class AuditEntry(BatonModel):
    """One change, and the key that made it."""

    id: int
    at: datetime
    key_id: UUID | None = Field(default=None, description="None: made without a key (auth off, server CLI).")
    key_name: str | None = None
    origin: str = Field(description="'api' (a request) or 'cli' (a server-side command).")
    method: str
    path: str
    route: str | None = Field(default=None, description="The route's template, e.g. /api/deployments/{id}.")
    status: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditPage(Page[AuditEntry]):
    """`GET /api/audit`, newest first."""
