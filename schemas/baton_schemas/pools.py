"""Work pools and their queues: where deployment runs wait for a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import Description, JsonObject, Label

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class WorkPoolCreate(ClientModel):
    name: str = Field(pattern=NAME_PATTERN)
    type: Label = "process"
    description: Description | None = None
    base_job_template: JsonObject = Field(default_factory=dict)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False
    late_after_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A run of this pool still Scheduled this long past its time is Late "
        "(unless its deployment sets late_after); the server's default if unset.",
    )


class WorkPoolUpdate(ClientModel):
    description: Description | None = None
    base_job_template: JsonObject | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool | None = None
    late_after_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A run of this pool still Scheduled this long past its time is Late "
        "(unless its deployment sets late_after); the server's default if unset.",
    )


class WorkPool(BatonModel):
    id: UUID
    name: str
    type: str
    description: str | None = None
    base_job_template: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int | None = None
    paused: bool = False
    late_after_seconds: float | None = None
    created: datetime


class WorkQueueCreate(ClientModel):
    name: str = Field(pattern=NAME_PATTERN)
    priority: int = Field(default=1, ge=1, description="1 is served first.")
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False


class WorkQueueUpdate(ClientModel):
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool | None = None


class WorkQueue(BatonModel):
    id: UUID
    pool_name: str
    name: str
    priority: int
    concurrency_limit: int | None = None
    paused: bool = False
    created: datetime


class Worker(BatonModel):
    id: str
    name: str
    pool_name: str
    last_heartbeat: datetime
    online: bool
    slots: int | None = None
    running: int = 0
