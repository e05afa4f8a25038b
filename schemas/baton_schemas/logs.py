"""Log records emitted by flow and task runs."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from pydantic import Field

from ._base import BatonModel, utcnow
from .limits import Message


class LogRecord(BatonModel):
    id: UUID = Field(default_factory=uuid4)
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    name: Message = "baton"
    level: int = Field(default=20, ge=0, le=100)
    message: Message
    timestamp: datetime = Field(default_factory=utcnow)
