"""Flows: the registered identity of a decorated function."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import Description, Name, Tags


class FlowCreate(ClientModel):
    name: Name
    description: Description | None = None
    tags: Tags = Field(default_factory=list)


class Flow(BatonModel):
    id: UUID
    name: str
    slug: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    created: datetime
