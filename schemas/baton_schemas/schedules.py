"""Schedules: when a deployment runs without anyone asking.

    schedules:
      - cron: "0 2 * * *"                 # five fields, or @hourly, @daily...
        timezone: Europe/Berlin
        parameters: {full: true}
      - interval: 1h30m                   # seconds, "15m", "1h30m", "PT15M"
        anchor_date: 2026-01-01T00:00:00Z
        slug: every-90-minutes
        jitter: 30s
      - rrule: "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0"
        timezone: America/New_York
        active: false
    schedule_policy: {catchup: latest, catchup_window: 1h, overlap: skip}

Each spec is checked when it is made (a bad cron string, rule, zone or interval is a
validation error naming its field); when its runs fall is `baton_schemas.slots`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, TypeAdapter, field_validator

from ._base import BatonModel, ClientModel
from .limits import LABEL_MAX, JsonObject, refuse_nul

# 2020-01-01 00:00 in the schedule's zone: the phase of an interval and the DTSTART of a rule
# that give none, fixed so that every process and every restart computes the same slots.
DEFAULT_ANCHOR = datetime(2020, 1, 1)
MIN_INTERVAL_SECONDS = 0.001

_UNITS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_COMPACT = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|w|d|h|m|s))", re.IGNORECASE)
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def parse_duration(value: Any) -> Any:
    """Seconds from `900`, `"15m"`, `"1h30m"`, `"PT1H30M"` or a timedelta; other input is left
    for the float validator to refuse."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _COMPACT.findall(text)
    if parts and "".join(number + unit for number, unit in parts).lower() == text.lower().replace(" ", ""):
        return sum(float(number) * _UNITS[unit.lower()] for number, unit in parts)
    try:
        return _TIMEDELTA.validate_python(text).total_seconds()
    except ValueError:
        raise ValueError(
            f"{value!r} is not a duration: use seconds (900), '15m', '1h30m' or ISO 8601 ('PT15M')"
        ) from None


Seconds = Annotated[float, BeforeValidator(parse_duration)]


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone of this name; ValueError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone (such as 'UTC' or 'Europe/Berlin')") from None


def _check_zone(name: str) -> str:
    zone(name)
    return name


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_check_zone)]


class IntervalSchedule(ClientModel):
    """Every `interval_seconds`, at `anchor_date + k * interval` for every whole k: the spacing is
    absolute, so a DST change moves the local clock time of the runs, not their spacing."""

    kind: Literal["interval"] = "interval"
    interval_seconds: Seconds = Field(gt=0, description="Seconds, or '15m', '1h30m', 'PT15M'.")
    anchor_date: datetime | None = Field(
        default=None,
        description="Sets the phase; a time without offset is in `timezone`. 2020-01-01 if unset.",
    )
    timezone: TimeZone = "UTC"

    @field_validator("interval_seconds")
    @classmethod
    def _not_too_small(cls, value: float) -> float:
        if value < MIN_INTERVAL_SECONDS:
            raise ValueError(f"must be at least {MIN_INTERVAL_SECONDS} s")
        return value


_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


@lru_cache(maxsize=4096)
def _check_cron(expression: str) -> str:
    """The cron string, normalised, once it is known valid (cached: many deployments share one
    expression, and croniter's check expands every field)."""
    from croniter import croniter

    text = " ".join(expression.split())
    if text.lower() in _CRON_MACROS:
        return text
    if len(text.split(" ")) != 5:
        raise ValueError(
            f"{expression!r} is not a cron string: five fields (minute hour day month weekday), "
            "such as '0 2 * * *', or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    if not croniter.is_valid(text):
        raise ValueError(f"{expression!r} is not a valid cron string (minute hour day month weekday)")
    return text


CronString = Annotated[
    str, StringConstraints(max_length=LABEL_MAX), AfterValidator(refuse_nul), AfterValidator(_check_cron)
]


class CronSchedule(ClientModel):
    """A cron string read in local time of `timezone`. `day_or` as in cron (and Prefect): when both
    day-of-month and weekday are restricted, a day matching either runs; false requires both."""

    kind: Literal["cron"] = "cron"
    cron: CronString
    timezone: TimeZone = "UTC"
    day_or: bool = True


def _check_rrule(text: str) -> str:
    from .slots import parse_rrule  # the rule is parsed where it is used, with the same settings

    try:
        parse_rrule(text, "UTC")
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ValueError(
            f"not a valid RFC 5545 rule (such as 'FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0'): {exc}"
        ) from None
    return text


RRuleString = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10_000),
    AfterValidator(refuse_nul),
    AfterValidator(_check_rrule),
]


class RRuleSchedule(ClientModel):
    """An RFC 5545 recurrence: an RRULE (with or without the `RRULE:` prefix), optionally with
    DTSTART, EXDATE, RDATE and EXRULE lines. A DTSTART without offset or TZID, and a rule without
    DTSTART (2020-01-01 00:00), are in `timezone`."""

    kind: Literal["rrule"] = "rrule"
    rrule: RRuleString
    timezone: TimeZone = "UTC"


ScheduleSpec = Annotated[IntervalSchedule | CronSchedule | RRuleSchedule, Field(discriminator="kind")]


class CatchupPolicy(StrEnum):
    """What happens to the slots missed while no scheduler ran, within `catchup_window`."""

    ALL = "all"  # a run for each of them
    LATEST = "latest"  # a run for the latest one only, the others Skipped
    NONE = "none"  # none: they are all Skipped


class OverlapPolicy(StrEnum):
    """What happens at a slot when the schedule's previous run is still going."""

    ALLOW = "allow"  # start it anyway
    SKIP = "skip"  # do not start it: Skipped
    BUFFER_ONE = "buffer_one"  # start it once the previous one ends; at most one waits
    CANCEL_OTHER = "cancel_other"  # cancel the previous one, then start


class SchedulePolicy(ClientModel):
    """Catch-up and overlap (as Temporal's schedule policies), and when a run counts as Late."""

    catchup: CatchupPolicy = CatchupPolicy.LATEST
    catchup_window: Seconds = Field(default=3600.0, ge=0, description="Seconds, or '1h', '30m'.")
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    late_after: Seconds = Field(
        default=15.0, gt=0, description="Seconds past its slot a Scheduled run is Late."
    )


class SchedulePolicyOverride(ClientModel):
    """A schedule's own policy: the fields it sets win over the deployment's."""

    catchup: CatchupPolicy | None = None
    catchup_window: Seconds | None = Field(default=None, ge=0)
    overlap: OverlapPolicy | None = None
    late_after: Seconds | None = Field(default=None, gt=0)


def effective_policy(deployment: SchedulePolicy, override: SchedulePolicyOverride | None) -> SchedulePolicy:
    if override is None:
        return deployment
    return deployment.model_copy(update=override.model_dump(exclude_none=True))


ScheduleSlug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$"),
]


class DeploymentSchedule(ClientModel):
    """One schedule of a deployment, stored in `deployments.schedules` with its id and slug.

    `id` is the server's: a new slug gets a new one, the same slug on a later deploy keeps it (so
    its runs, keyed `schedule:{id}:{slot}`, are the same runs). `slug` names it in the CLI and the
    API, unique within the deployment; unset, it is `{kind}-{n}` (`cron-1`, `interval-2`)."""

    id: UUID | None = Field(default=None, description="Assigned by the server; kept while the slug is.")
    slug: ScheduleSlug | None = None
    schedule: ScheduleSpec
    active: bool = True
    parameters: JsonObject = Field(default_factory=dict, description="Merged over the deployment's.")
    max_scheduled_runs: int | None = Field(default=None, ge=1, description="At most this many future runs.")
    jitter: Seconds | None = Field(
        default=None,
        gt=0,
        description="Each run starts up to this many seconds after its slot, "
        "the same delay for the same slot in every process.",
    )
    policy: SchedulePolicyOverride | None = None


def assign_slugs(schedules: list[DeploymentSchedule]) -> list[DeploymentSchedule]:
    """Give each schedule without a slug `{kind}-{n}`, skipping slugs already taken; ValueError when
    two schedules share one."""
    taken: set[str] = set()
    for item in schedules:
        if item.slug is not None:
            if item.slug in taken:
                raise ValueError(
                    f"two schedules have the slug {item.slug!r}: slugs are unique per deployment"
                )
            taken.add(item.slug)
    counts: dict[str, int] = {}
    out = []
    for item in schedules:
        if item.slug is None:
            kind = item.schedule.kind
            n = counts.get(kind, 0)
            while True:
                n += 1
                slug = f"{kind}-{n}"
                if slug not in taken:
                    break
            counts[kind] = n
            taken.add(slug)
            item = item.model_copy(update={"slug": slug})
        out.append(item)
    return out


MAX_UPCOMING = 100


class UpcomingSlots(BatonModel):
    """The next slots of one schedule, and when each run starts (slot plus jitter)."""

    id: UUID | None = None
    slug: str | None = None
    active: bool = True
    slots: list[datetime] = Field(default_factory=list)
    starts: list[datetime] = Field(default_factory=list)
