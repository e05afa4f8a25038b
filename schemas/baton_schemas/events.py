"""Events: what happened, to which resource, and what it relates to."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import Field, field_validator

from ._base import ClientModel, utcnow

RESOURCE_ID = "baton.resource.id"
RESOURCE_ROLE = "baton.resource.role"


class Event(ClientModel):
    schema_version: int = 1
    id: UUID = Field(default_factory=uuid4)
    occurred: datetime = Field(default_factory=utcnow)
    event: str = Field(min_length=1, description="Dotted name; the routing key on baton.events.")
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: UUID | None = None
    received: datetime | None = None

    @field_validator("event")
    @classmethod
    def _fits_a_routing_key(cls, value: str) -> str:
        if len(value.encode()) > 255:
            raise ValueError("event name is longer than 255 bytes")
        return value

    @field_validator("resource")
    @classmethod
    def _has_an_id(cls, value: dict[str, str]) -> dict[str, str]:
        if RESOURCE_ID not in value:
            raise ValueError(f"resource needs a {RESOURCE_ID!r} label")
        return value

    @field_validator("related")
    @classmethod
    def _related_have_ids_and_roles(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for resource in value:
            if RESOURCE_ID not in resource or RESOURCE_ROLE not in resource:
                raise ValueError(f"each related resource needs {RESOURCE_ID!r} and {RESOURCE_ROLE!r}")
        return value
