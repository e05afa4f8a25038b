"""Schedules: when a deployment runs without anyone asking."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import ClientModel


class IntervalSchedule(ClientModel):
    kind: Literal["interval"] = "interval"
    interval_seconds: float = Field(gt=0)
    anchor_date: datetime | None = None
    timezone: str = "UTC"


class CronSchedule(ClientModel):
    kind: Literal["cron"] = "cron"
    cron: str
    timezone: str = "UTC"
    day_or: bool = True


class RRuleSchedule(ClientModel):
    kind: Literal["rrule"] = "rrule"
    rrule: str
    timezone: str = "UTC"


ScheduleSpec = Annotated[IntervalSchedule | CronSchedule | RRuleSchedule, Field(discriminator="kind")]


class DeploymentSchedule(ClientModel):
    schedule: ScheduleSpec
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_scheduled_runs: int | None = Field(default=None, ge=1)
