"""When a schedule's runs fall: pure time arithmetic, the same in every process.

    >>> spec = CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin")
    >>> next_slots(spec, datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    [datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]

Slots are aware UTC datetimes, strictly increasing, strictly later than `after`.

Cron strings and rules are read in the local time of the schedule's zone, and each local time is
turned into one instant:
- a local time that does not exist (the clocks jump forward over it) runs at the instant of the
  jump: 02:30 on the spring-forward day in Berlin or New York runs at 03:00 local time, once;
- a local time that happens twice (the clocks fall back) runs at its first occurrence, once:
  01:30 in New York on the fall-back day runs at 01:30 EDT, not again at 01:30 EST;
- several local times that fall on the same instant (02:00 and 02:30 in the skipped hour)
  make one slot.
Intervals are absolute: `anchor + k * interval` in UTC, so their spacing never changes and
their local clock time moves by the DST shift.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import islice
from typing import Any

from dateutil import rrule as _rrule

from .schedules import (
    DEFAULT_ANCHOR,
    CronSchedule,
    DeploymentSchedule,
    IntervalSchedule,
    RRuleSchedule,
    ScheduleSpec,
    zone,
)

__all__ = ["iter_slots", "jitter_offset", "next_slots", "parse_rrule", "to_utc"]


def iter_slots(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """The slots of `spec` strictly after `after` (aware), in order, as aware UTC datetimes."""
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    after = after.astimezone(UTC)
    if isinstance(spec, IntervalSchedule):
        return _interval_slots(spec, after)
    if isinstance(spec, CronSchedule):
        return _increasing(_cron_instants(spec, after), after)
    if isinstance(spec, RRuleSchedule):
        return _increasing(_rrule_instants(spec, after), after)
    raise TypeError(f"not a schedule: {spec!r}")


def next_slots(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    return list(islice(iter_slots(spec, after), n))


def jitter_offset(schedule: DeploymentSchedule, slot: datetime) -> timedelta:
    """How long after `slot` its run starts: in [0, jitter), the same for the same schedule and
    slot in every process and after every restart."""
    if not schedule.jitter:
        return timedelta(0)
    key = f"{schedule.id or schedule.slug}:{slot.astimezone(UTC).isoformat()}".encode()
    fraction = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
    return timedelta(microseconds=int(fraction * schedule.jitter * 1_000_000))


def to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """The instant of the naive local time `wall` in `tz`: the first of two when the clocks fall
    back, the instant of the jump when they spring forward over it."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap fold=0 reads it with the offset before the jump and fold=1 with the one after;
    # the jump lies between the two instants. Zones change on whole seconds.
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, second), max(first, second)
    low_offset = low.astimezone(tz).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp()) + 1
    while hi - lo > 1:  # the offset at lo is low_offset, at hi it is not
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == low_offset:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _increasing(instants: Iterator[datetime], after: datetime) -> Iterator[datetime]:
    last = after
    for instant in instants:
        if instant > last:
            last = instant
            yield instant


def _interval_slots(spec: IntervalSchedule, after: datetime) -> Iterator[datetime]:
    anchor = spec.anchor_date or DEFAULT_ANCHOR
    anchor = to_utc(anchor, zone(spec.timezone)) if anchor.tzinfo is None else anchor.astimezone(UTC)
    step = timedelta(microseconds=max(1, round(spec.interval_seconds * 1_000_000)))
    k = (after - anchor) // step + 1
    while True:
        yield anchor + k * step
        k += 1


@lru_cache(maxsize=4096)
def _cron_walker(cron: str, day_or: bool) -> Any:
    """A croniter of `cron`, to be copied: making one expands every field (about 0.2 ms), a
    copy moved to another start costs a few microseconds, and deployments share expressions."""
    from croniter import croniter

    return croniter(cron, DEFAULT_ANCHOR, day_or=day_or, ret_type=datetime)


def _cron_instants(spec: CronSchedule, after: datetime) -> Iterator[datetime]:
    from croniter import CroniterBadDateError

    tz = zone(spec.timezone)
    # croniter walks naive local times; to_utc is non-decreasing in them, so the first slot
    # after `after` comes after the local time of `after`.
    start = after.astimezone(tz).replace(tzinfo=None)
    walk = copy.copy(_cron_walker(spec.cron, spec.day_or))
    walk.set_current(start, force=True)
    while True:
        try:
            wall = walk.get_next(datetime)
        except CroniterBadDateError:  # no match within croniter's search bound: no more slots
            return
        yield to_utc(wall, tz)


# --- RFC 5545 rules -----------------------------------------------------------------------

_UNTIL_UTC = re.compile(r"UNTIL=\d{8}(T\d{6})?Z", re.IGNORECASE)
_HAS_DTSTART = re.compile(r"(^|\n)\s*DTSTART", re.IGNORECASE)
# the length of one period of each frequency that can be moved forward without changing the
# rule's later occurrences (yearly and monthly periods differ in length; they are few anyway)
_PERIOD = {
    _rrule.WEEKLY: timedelta(weeks=1),
    _rrule.DAILY: timedelta(days=1),
    _rrule.HOURLY: timedelta(hours=1),
    _rrule.MINUTELY: timedelta(minutes=1),
    _rrule.SECONDLY: timedelta(seconds=1),
}


@lru_cache(maxsize=4096)
def parse_rrule(text: str, timezone: str) -> _rrule.rruleset:
    """The rule set of `text`. A rule without DTSTART starts at 2020-01-01 00:00 in `timezone`
    (as a UTC-anchored start when its UNTIL is in UTC, as RFC 5545 asks); a TZID is an IANA zone."""
    tz = zone(timezone)
    dtstart: datetime | None = None
    if not _HAS_DTSTART.search(text):
        dtstart = DEFAULT_ANCHOR.replace(tzinfo=tz) if _UNTIL_UTC.search(text) else DEFAULT_ANCHOR
    parsed = _rrule.rrulestr(text.strip(), dtstart=dtstart, forceset=True, unfold=True, tzids=zone)
    assert isinstance(parsed, _rrule.rruleset)
    rules, dates, _, _ = _parts(parsed)
    if not rules and not dates:
        raise ValueError("it has no RRULE or RDATE")
    return parsed


def _rrule_instants(spec: RRuleSchedule, after: datetime) -> Iterator[datetime]:
    tz = zone(spec.timezone)
    rules = _moved_forward(parse_rrule(spec.rrule, spec.timezone), after, tz)
    for occurrence in rules:
        local_tz = occurrence.tzinfo or tz
        instant = to_utc(occurrence.replace(tzinfo=None), local_tz)
        if instant > after:
            yield instant


def _moved_forward(parsed: _rrule.rruleset, after: datetime, tz: tzinfo) -> _rrule.rruleset:
    """The same rule set with each rule's DTSTART moved forward by whole periods to just before
    `after`, so that iterating does not walk every occurrence since 2020. Rules with COUNT stay
    (they count from their DTSTART), as do yearly and monthly ones. Uses the set's parts, which
    dateutil keeps in attributes of its own."""
    rules, dates, exrules, exdates = _parts(parsed)
    moved = _rrule.rruleset()
    for rule in rules:
        own = vars(rule)
        period = _PERIOD.get(own["_freq"])
        if period is not None and own["_count"] is None:
            start: datetime = own["_dtstart"]
            local_after = after.astimezone(start.tzinfo or tz).replace(tzinfo=start.tzinfo)
            step = period * own["_interval"]
            # two periods of margin before the local time of `after`
            whole = (local_after.replace(tzinfo=None) - start.replace(tzinfo=None)) // step - 2
            if whole > 0:
                rule = rule.replace(dtstart=start + whole * step)
        moved.rrule(rule)
    for date in dates:
        moved.rdate(date)
    for rule in exrules:
        moved.exrule(rule)
    for date in exdates:
        moved.exdate(date)
    return moved


def _parts(
    parsed: _rrule.rruleset,
) -> tuple[list[_rrule.rrule], list[datetime], list[_rrule.rrule], list[datetime]]:
    """The rules, dates, exclusion rules and exclusion dates of a set (dateutil has no public
    reader for them)."""
    own = vars(parsed)
    return own["_rrule"], own["_rdate"], own["_exrule"], own["_exdate"]
