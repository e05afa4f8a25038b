"""Backfill: runs for the slots of a past range of a deployment's schedules."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field, model_validator

from ._base import BatonModel, ClientModel
from .schedules import ScheduleSlug


class BackfillCreate(ClientModel):
    start: datetime = Field(description="The first slot may be at this time (inclusive).")
    end: datetime = Field(description="Slots before this time (exclusive), and not in the future.")
    schedules: list[ScheduleSlug] | None = Field(
        default=None, description="Slugs of the schedules to backfill; every active one if unset."
    )
    dry_run: bool = Field(default=False, description="List the slots; make no run.")

    @model_validator(mode="after")
    def _range(self) -> BackfillCreate:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (an offset, or Z for UTC)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BackfillSlot(BatonModel):
    schedule_id: UUID | str
    schedule_slug: str | None = None
    slot: datetime
    flow_run_id: UUID | None = Field(default=None, description="The slot's run (made now or before).")
    created: bool = False


class BackfillResult(BatonModel):
    deployment_id: UUID
    dry_run: bool
    slots: list[BackfillSlot]
    created: int = Field(description="Runs made by this request; slots that had a run keep it.")
    existing: int
