"""Slot arithmetic: cron, interval and rrule, around both DST changes in Berlin and New York.

2026's changes: Europe/Berlin springs forward on 29 March (02:00 CET -> 03:00 CEST, at 01:00 UTC)
and falls back on 25 October (03:00 CEST -> 02:00 CET, at 01:00 UTC); America/New_York springs
forward on 8 March (02:00 EST -> 03:00 EDT, at 07:00 UTC) and falls back on 1 November
(02:00 EDT -> 01:00 EST, at 06:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from baton_schemas.schedules import (
    CronSchedule,
    DeploymentSchedule,
    IntervalSchedule,
    RRuleSchedule,
    SchedulePolicy,
    SchedulePolicyOverride,
    assign_slugs,
    effective_policy,
)
from baton_schemas.slots import iter_slots, jitter_offset, next_slots, parse_rrule, to_utc

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(slots: list[datetime], tz: ZoneInfo) -> list[str]:
    return [s.astimezone(tz).strftime("%m-%d %H:%M%z") for s in slots]


# --- to_utc: the rule itself -----------------------------------------------------------------


def test_a_time_skipped_by_spring_forward_is_the_instant_of_the_jump() -> None:
    assert to_utc(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    assert to_utc(datetime(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert to_utc(datetime(2026, 3, 8, 2, 59, 59), NEW_YORK) == utc(2026, 3, 8, 7, 0)


def test_a_time_repeated_by_fall_back_is_its_first_occurrence() -> None:
    assert to_utc(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)  # CEST
    assert to_utc(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)  # EDT


def test_a_half_hour_shift_is_found_too() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 4 October 2026
    assert to_utc(datetime(2026, 10, 4, 2, 15), ZoneInfo("Australia/Lord_Howe")) == utc(2026, 10, 3, 15, 30)


# --- cron ------------------------------------------------------------------------------------


def test_cron_daily_in_the_skipped_hour_runs_once_at_the_jump() -> None:
    spec = CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin")
    slots = next_slots(spec, utc(2026, 3, 27, 12), 4)
    assert local(slots, BERLIN) == [
        "03-28 02:30+0100",
        "03-29 03:00+0200",
        "03-30 02:30+0200",
        "03-31 02:30+0200",
    ]


def test_cron_every_quarter_hour_through_spring_forward_has_no_duplicates() -> None:
    spec = CronSchedule(cron="*/15 * * * *", timezone="America/New_York")
    slots = next_slots(spec, utc(2026, 3, 8, 6, 30), 6)  # 01:30 EST
    assert local(slots, NEW_YORK) == [
        "03-08 01:45-0500",
        "03-08 03:00-0400",  # 02:00, 02:15, 02:30, 02:45 and 03:00 are one instant: one slot
        "03-08 03:15-0400",
        "03-08 03:30-0400",
        "03-08 03:45-0400",
        "03-08 04:00-0400",
    ]


def test_cron_in_the_repeated_hour_runs_once() -> None:
    spec = CronSchedule(cron="30 1 * * *", timezone="America/New_York")
    slots = next_slots(spec, utc(2026, 10, 31, 12), 3)
    assert local(slots, NEW_YORK) == ["11-01 01:30-0400", "11-02 01:30-0500", "11-03 01:30-0500"]
    berlin = CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin")
    assert local(next_slots(berlin, utc(2026, 10, 24, 12), 2), BERLIN) == [
        "10-25 02:30+0200",
        "10-26 02:30+0100",
    ]


def test_cron_hourly_through_fall_back_skips_the_second_pass_of_the_hour() -> None:
    spec = CronSchedule(cron="0 * * * *", timezone="Europe/Berlin")
    slots = next_slots(spec, utc(2026, 10, 24, 23, 30), 4)  # 01:30 CEST
    assert local(slots, BERLIN) == [
        "10-25 02:00+0200",
        "10-25 03:00+0100",
        "10-25 04:00+0100",
        "10-25 05:00+0100",
    ]


def test_cron_from_inside_the_second_pass_of_the_repeated_hour() -> None:
    spec = CronSchedule(cron="*/20 * * * *", timezone="Europe/Berlin")
    after = utc(2026, 10, 25, 1, 10)  # 02:10 CET, the second 02:10 of the night
    assert local(next_slots(spec, after, 2), BERLIN) == ["10-25 03:00+0100", "10-25 03:20+0100"]


def test_cron_day_or() -> None:
    after = utc(2026, 1, 1)
    either = next_slots(CronSchedule(cron="0 0 13 * 5"), after, 3)  # the 13th, or a Friday
    both = next_slots(CronSchedule(cron="0 0 13 * 5", day_or=False), after, 2)  # Friday the 13th
    assert [s.day for s in either] == [2, 9, 13]
    assert [(s.month, s.day) for s in both] == [(2, 13), (3, 13)]


def test_cron_macros_and_a_date_that_never_comes() -> None:
    assert next_slots(CronSchedule(cron="@daily"), utc(2026, 1, 1, 5), 1) == [utc(2026, 1, 2)]
    assert next_slots(CronSchedule(cron="0 0 30 2 *"), utc(2026, 1, 1), 1) == []


# --- interval --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "fall"),
    [
        (BERLIN, utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)),
        (NEW_YORK, utc(2026, 3, 8, 4), utc(2026, 11, 1, 2)),
    ],
)
def test_interval_keeps_its_absolute_spacing_through_both_changes(
    tz: ZoneInfo, spring: datetime, fall: datetime
) -> None:
    spec = IntervalSchedule(interval_seconds="1h", timezone=str(tz))
    for after in (spring, fall):
        slots = next_slots(spec, after, 8)
        assert all(b - a == timedelta(hours=1) for a, b in pairwise(slots))
        offsets = {s.astimezone(tz).utcoffset() for s in slots}
        assert len(offsets) == 2  # the change happened inside the window, the spacing held


def test_interval_with_a_local_anchor_in_the_zone() -> None:
    spec = IntervalSchedule(
        interval_seconds=86400, anchor_date=datetime(2026, 3, 1, 9), timezone="Europe/Berlin"
    )
    slots = next_slots(spec, utc(2026, 3, 28, 12), 2)
    # 09:00 CET is 08:00 UTC; after the change the same instant of the day is 10:00 CEST
    assert local(slots, BERLIN) == ["03-29 10:00+0200", "03-30 10:00+0200"]


def test_interval_phase_comes_from_the_anchor() -> None:
    spec = IntervalSchedule(interval_seconds=90, anchor_date=utc(2026, 1, 1, 0, 0, 10))
    assert next_slots(spec, utc(2026, 1, 1, 0, 0, 10), 2) == [
        utc(2026, 1, 1, 0, 1, 40),
        utc(2026, 1, 1, 0, 3, 10),
    ]
    # before the anchor too: the anchor fixes the phase, not a start
    assert next_slots(spec, utc(2025, 12, 31, 23, 58), 1) == [utc(2025, 12, 31, 23, 58, 40)]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (900, 900.0),
        ("900", 900.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("PT15M", 900.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_interval_durations(written: Any, seconds: float) -> None:
    assert IntervalSchedule(interval_seconds=written).interval_seconds == seconds


# --- rrule -----------------------------------------------------------------------------------


def test_rrule_in_the_skipped_and_the_repeated_hour() -> None:
    spec = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="Europe/Berlin")
    assert local(next_slots(spec, utc(2026, 3, 28, 12), 2), BERLIN) == [
        "03-29 03:00+0200",
        "03-30 02:30+0200",
    ]
    assert local(next_slots(spec, utc(2026, 10, 24, 12), 2), BERLIN) == [
        "10-25 02:30+0200",
        "10-26 02:30+0100",
    ]


def test_rrule_weekly_in_new_york_across_both_changes() -> None:
    spec = RRuleSchedule(
        rrule="RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=1,2;BYMINUTE=30", timezone="America/New_York"
    )
    assert local(next_slots(spec, utc(2026, 3, 7), 3), NEW_YORK) == [
        "03-08 01:30-0500",
        "03-08 03:00-0400",  # 02:30 does not exist that night
        "03-15 01:30-0400",
    ]
    assert local(next_slots(spec, utc(2026, 10, 31), 3), NEW_YORK) == [
        "11-01 01:30-0400",  # 01:30 happens twice: once
        "11-01 02:30-0500",
        "11-08 01:30-0500",
    ]


def test_rrule_hourly_through_fall_back_in_new_york() -> None:
    spec = RRuleSchedule(rrule="FREQ=HOURLY", timezone="America/New_York")
    slots = next_slots(spec, utc(2026, 11, 1, 4, 30), 3)  # 00:30 EDT
    assert local(slots, NEW_YORK) == ["11-01 01:00-0400", "11-01 02:00-0500", "11-01 03:00-0500"]


def test_rrule_dtstart_tzid_count_and_exdate() -> None:
    text = "\n".join(
        [
            "DTSTART;TZID=America/New_York:20261030T013000",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE;TZID=America/New_York:20261101T013000",
        ]
    )
    spec = RRuleSchedule(rrule=text)  # the TZID wins over the schedule's own zone (UTC)
    slots = next_slots(spec, utc(2026, 1, 1), 10)
    assert local(slots, NEW_YORK) == [
        "10-30 01:30-0400",
        "10-31 01:30-0400",
        "11-02 01:30-0500",
        "11-03 01:30-0500",
    ]
    assert next_slots(spec, slots[-1], 1) == []


def test_rrule_until_in_utc_and_in_local_time() -> None:
    in_utc = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=9;UNTIL=20260103T000000Z", timezone="Europe/Berlin")
    floating = RRuleSchedule(
        rrule="DTSTART:20260101T090000\nRRULE:FREQ=DAILY;UNTIL=20260102T235959", timezone="Europe/Berlin"
    )
    after = utc(2026, 1, 1)
    assert local(next_slots(in_utc, after, 5), BERLIN) == ["01-01 09:00+0100", "01-02 09:00+0100"]
    assert local(next_slots(floating, after, 5), BERLIN) == ["01-01 09:00+0100", "01-02 09:00+0100"]
    assert next_slots(in_utc, utc(2026, 6, 1), 1) == []


@settings(max_examples=60, deadline=None)
@given(
    freq=st.sampled_from(["WEEKLY", "DAILY", "HOURLY", "MINUTELY"]),
    interval=st.integers(1, 13),
    byday=st.sampled_from(["", ";BYDAY=MO,TH", ";BYDAY=SU"]),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    after=st.datetimes(min_value=datetime(2020, 1, 2), max_value=datetime(2020, 4, 1)),
)
def test_moving_dtstart_forward_keeps_every_occurrence(
    freq: str, interval: int, byday: str, tz: str, after: datetime
) -> None:
    text = f"FREQ={freq};INTERVAL={interval}{byday}"
    spec = RRuleSchedule(rrule=text, timezone=tz)
    aware_after = after.replace(tzinfo=UTC)
    walked = (to_utc(o.replace(tzinfo=None), o.tzinfo or ZoneInfo(tz)) for o in parse_rrule(text, tz))
    expected = list(islice((t for t in walked if t > aware_after), 5))
    assert next_slots(spec, aware_after, len(expected)) == expected


# --- every kind: the contract ----------------------------------------------------------------

SPECS = [
    CronSchedule(cron="*/7 * * * *", timezone="Europe/Berlin"),
    CronSchedule(cron="0 1-3 * * *", timezone="America/New_York"),
    IntervalSchedule(interval_seconds=1234.5, timezone="America/New_York"),
    RRuleSchedule(rrule="FREQ=MINUTELY;INTERVAL=17", timezone="Europe/Berlin"),
    RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=0,1,2,3;BYMINUTE=0,30", timezone="America/New_York"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}-{s.timezone}")
@pytest.mark.parametrize(
    "after", [utc(2026, 3, 8, 5), utc(2026, 3, 28, 23), utc(2026, 10, 24, 23), utc(2026, 10, 31, 5)]
)
def test_slots_are_utc_strictly_increasing_and_after(spec: Any, after: datetime) -> None:
    slots = list(islice(iter_slots(spec, after), 60))
    assert slots and all(s.tzinfo is UTC for s in slots)
    assert slots[0] > after
    assert all(a < b for a, b in pairwise(slots))
    # resuming from any slot gives the rest: a restarted scheduler agrees with itself
    assert next_slots(spec, slots[20], 10) == slots[21:31]


def test_after_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_slots(CronSchedule(cron="* * * * *"), datetime(2026, 1, 1), 1)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields", "where", "says"),
    [
        (CronSchedule, {"cron": "every minute"}, "cron", "five fields"),
        (CronSchedule, {"cron": "* * * * * *"}, "cron", "five fields"),
        (CronSchedule, {"cron": "61 * * * *"}, "cron", "not a valid cron"),
        (CronSchedule, {"cron": "* * * * *", "timezone": "Mars/Base"}, "timezone", "IANA"),
        (RRuleSchedule, {"rrule": "FREQ=SOMETIMES"}, "rrule", "RFC 5545"),
        (
            RRuleSchedule,
            {"rrule": "DTSTART:20260101T090000\nRRULE:FREQ=DAILY;UNTIL=20260105T000000Z"},
            "rrule",
            "UNTIL",
        ),
        (IntervalSchedule, {"interval_seconds": 0}, "interval_seconds", "greater than 0"),
        (IntervalSchedule, {"interval_seconds": "-5m"}, "interval_seconds", "duration"),
        (IntervalSchedule, {"interval_seconds": "often"}, "interval_seconds", "duration"),
    ],
)
def test_bad_specs_name_their_field(model: Any, fields: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    (error,) = caught.value.errors()
    assert error["loc"] == (where,)
    assert says in error["msg"]


# --- per-schedule settings -------------------------------------------------------------------


def test_slugs_default_to_kind_and_number_and_must_be_unique() -> None:
    cron = {"schedule": {"kind": "cron", "cron": "* * * * *"}}
    items = [DeploymentSchedule.model_validate(x) for x in (cron, {**cron, "slug": "cron-1"}, cron)]
    assert [s.slug for s in assign_slugs(items)] == ["cron-2", "cron-1", "cron-3"]
    with pytest.raises(ValueError, match="unique"):
        assign_slugs([items[1], items[1]])


def test_jitter_is_the_same_for_the_same_slot_and_within_bounds() -> None:
    schedule = DeploymentSchedule.model_validate(
        {"slug": "a", "schedule": {"kind": "cron", "cron": "* * * * *"}, "jitter": "30s"}
    )
    slots = next_slots(schedule.schedule, utc(2026, 1, 1), 50)
    delays = [jitter_offset(schedule, s) for s in slots]
    assert delays == [jitter_offset(schedule.model_copy(), s) for s in slots]
    assert all(timedelta(0) <= d < timedelta(seconds=30) for d in delays)
    assert len(set(delays)) > 40
    assert jitter_offset(schedule.model_copy(update={"jitter": None}), slots[0]) == timedelta(0)


def test_policy_defaults_and_a_schedule_override() -> None:
    policy = SchedulePolicy.model_validate({"catchup_window": "2h", "overlap": "skip"})
    assert (policy.catchup, policy.catchup_window, policy.overlap, policy.late_after) == (
        "latest",
        7200,
        "skip",
        15,
    )
    merged = effective_policy(policy, SchedulePolicyOverride(catchup="all", late_after="1m"))
    assert (merged.catchup, merged.catchup_window, merged.overlap, merged.late_after) == (
        "all",
        7200,
        "skip",
        60,
    )
