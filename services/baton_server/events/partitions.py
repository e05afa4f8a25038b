"""The event store's day partitions: made before anything is stored in them, dropped whole.

`events` and `event_resources` are range-partitioned on `occurred` by UTC day, one partition of
each per day (`events_p20250131`). Retention keeps the last `retention_days` days and today;
older days are dropped, a cheap catalogue change where deleting rows would be a table scan and a
vacuum. An event that occurred before the oldest day kept, or more than `FUTURE_DAYS` ahead, is
refused where it arrives (422, or dead-lettered with the reason): it has nowhere to be stored.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from ..db.types import Connection

log = logging.getLogger(__name__)

TABLES = ("events", "event_resources")
FUTURE_DAYS = 1  # clocks disagree: an event may say it occurred up to a day ahead
_LOCK = 0x0BA7_E7E7  # advisory lock: one process changes partitions at a time
_NAME = re.compile(r"^(events|event_resources)_p(\d{8})$")


class OutsideRetention(ValueError):
    pass


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def oldest_kept(now: datetime, retention_days: int) -> date:
    return day_of(now) - timedelta(days=retention_days)


@functools.lru_cache(maxsize=8)
def _kept_span(today: date, retention_days: int) -> tuple[datetime, datetime]:
    """The first moment of the oldest day kept, and the end of the last day ahead."""
    first = today - timedelta(days=retention_days)
    return _start(first), _start(today + timedelta(days=FUTURE_DAYS + 1))


def check_occurred(occurred: datetime, now: datetime, retention_days: int) -> None:
    """OutsideRetention if the store has no day for an event that occurred then."""
    first, end = _kept_span(day_of(now), retention_days)
    if occurred < first:
        raise OutsideRetention(
            f"occurred {occurred.isoformat()} is older than the {retention_days} days of events kept"
        )
    if occurred >= end:
        raise OutsideRetention(f"occurred {occurred.isoformat()} is more than {FUTURE_DAYS} day ahead")


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _bound(day: date) -> str:
    return _start(day).isoformat()


class Partitions:
    """The days this process knows to have partitions; `ensure` makes the missing ones."""

    def __init__(self) -> None:
        self._known: set[date] = set()

    def forget(self) -> None:
        self._known.clear()

    async def ensure(self, conn: Connection, days: Iterable[date]) -> None:
        missing = sorted(set(days) - self._known)
        if not missing:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            for day in missing:
                for table in TABLES:
                    # names and bounds come from a date, never from input: safe to format
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
                    )
        self._known.update(missing)


async def existing_days(conn: Connection, table: str = "events") -> list[date]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname = $1""",
        table,
    )
    days = []
    for row in rows:
        found = _NAME.match(row["relname"])
        if found:
            days.append(datetime.strptime(found.group(2), "%Y%m%d").date())
    return sorted(days)


async def apply_retention(conn: Connection, now: datetime, retention_days: int) -> list[date]:
    """Drop every day's partitions older than the days kept; returns the days dropped."""
    first = oldest_kept(now, retention_days)
    dropped: list[date] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        for table in TABLES:
            for day in await existing_days(conn, table):
                if day < first:
                    await conn.execute(f"DROP TABLE IF EXISTS {partition_name(table, day)}")
                    if table == "events":
                        dropped.append(day)
    if dropped:
        log.info("event retention: dropped %s", ", ".join(f"{d:%Y-%m-%d}" for d in dropped))
    return dropped


def days_ahead(now: datetime) -> list[date]:
    """The days whose partitions should exist before events arrive for them."""
    today = day_of(now)
    return [today + timedelta(days=n) for n in range(FUTURE_DAYS + 1)]
