"""Flows: the registered identity of a decorated function."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel


class FlowCreate(ClientModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)


class Flow(BatonModel):
    id: UUID
    name: str
    slug: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    created: datetime
