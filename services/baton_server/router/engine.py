"""Applying events to windows and firing what they complete, one transaction per batch.

In one transaction: each event's id goes into `router_events` (an id already there means its
effects committed before, so it is skipped: this is what makes a redelivery, a restarted router
or a second router count nothing twice); the windows the events concern are locked and read;
the events are counted; children that fired are counted in their compound or sequence parents;
windows are written back; every firing is recorded and its actions performed. The messages are
acked only after that commit.

The proactive timer takes windows that are over (plus the late-arrival allowance) with SKIP
LOCKED, in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from baton_schemas.triggers import EventTrigger

from ..db.types import Connection
from . import buckets
from .buckets import BucketKey
from .compiled import CompiledAutomation, parent_of
from .firing import Fired, FiringSettings, fire_all
from .index import Hit
from .windows import (
    EMPTY,
    Fire,
    Window,
    child_fired,
    occurred,
    proactive_due,
    proactive_expected,
    proactive_opens,
    reactive,
)

Registry = Mapping[UUID, CompiledAutomation]


@dataclass(frozen=True, slots=True)
class Matched:
    """An event (as JSON) and the triggers it concerns."""

    event: dict[str, Any]
    event_id: UUID
    hits: tuple[Hit, ...]
    traceparent: str | None = None  # the trace the event came with (traces on)


def _identity(automation_id: UUID, path: str, key: str) -> Fire:
    return Fire(automation_id, path, key, EMPTY, (), "")


def _count(
    window: Window, hit: Hit, trigger: EventTrigger, event: dict[str, Any], late: float
) -> Fire | None:
    leaf = hit.leaf
    base = _identity(leaf.automation_id, leaf.path, hit.bucket_key)
    if not leaf.proactive:
        return reactive(
            window, event, threshold=trigger.threshold, within=trigger.within, fire=base, late=late
        )
    fired = None
    if hit.expected:
        fired = proactive_expected(
            window, event, threshold=trigger.threshold, fire=base, rolling=not trigger.after
        )
    if hit.opens:
        proactive_opens(window, event, within=trigger.within, threshold=trigger.threshold)
    return fired


async def _climb(
    conn: Connection,
    registry: Registry,
    windows: dict[BucketKey, Window],
    fired: list[tuple[Fire, datetime]],
) -> list[tuple[CompiledAutomation, Fire]]:
    """Children's firings counted in their parents, up to the roots: the roots' firings."""
    roots = []
    pending = list(fired)
    while pending:
        fire, at = pending.pop(0)
        automation = registry.get(fire.automation_id)
        if automation is None:
            continue
        parent = parent_of(fire.path)
        if parent is None:
            roots.append((automation, fire))
            continue
        path, child = parent
        key: BucketKey = (fire.automation_id, path, "")
        if key not in windows:
            windows.update(await buckets.lock(conn, {key: False}))
        up = child_fired(
            windows[key], automation.composite(path), child, fire, at, _identity(fire.automation_id, path, "")
        )
        if up is not None:
            pending.append((up, at))
    return roots


async def apply_events(
    conn: Connection,
    batch: list[Matched],
    registry: Registry,
    settings: FiringSettings,
    now: datetime,
    *,
    late: float = 0.0,
) -> Fired:
    done = Fired()
    async with conn.transaction():
        fresh = {
            r["event_id"]
            for r in await conn.fetch(
                """INSERT INTO router_events (event_id) SELECT unnest($1::uuid[]) AS id ORDER BY id
                   ON CONFLICT DO NOTHING RETURNING event_id""",
                sorted({m.event_id for m in batch}),
            )
        }
        items = []
        for matched in batch:
            if matched.event_id in fresh:
                fresh.discard(matched.event_id)  # a copy in the same batch counts once
                items.append(matched)
        wanted: dict[BucketKey, bool] = {}
        for matched in items:
            for hit in matched.hits:
                if hit.leaf.automation_id in registry:
                    wanted[(hit.leaf.automation_id, hit.leaf.path, hit.bucket_key)] = hit.leaf.proactive
        windows = await buckets.lock(conn, wanted)
        fired: list[tuple[Fire, datetime]] = []
        for matched in items:
            for hit in matched.hits:
                key = (hit.leaf.automation_id, hit.leaf.path, hit.bucket_key)
                if key not in windows:
                    continue  # its automation went away meanwhile
                fire = _count(windows[key], hit, hit.leaf.trigger, matched.event, late)
                if fire is not None:
                    fired.append((fire, occurred(matched.event)))
        roots = await _climb(conn, registry, windows, fired)
        await buckets.write(conn, windows)
        # the runs a firing creates join the trace of the event that fired it
        traced = {str(m.event_id): m.traceparent for m in items if m.traceparent}
        await fire_all(conn, roots, settings, now, done, traced=traced)
    return done


async def judge_due(
    conn: Connection,
    registry: Registry,
    settings: FiringSettings,
    now: datetime,
    *,
    allowance: float,
    limit: int = 500,
) -> tuple[Fired, int]:
    """Proactive windows over by `allowance` seconds: fired if too few events came. Returns what
    to do after commit and how many windows were judged."""
    done = Fired()
    async with conn.transaction():
        windows = await buckets.due(conn, now - timedelta(seconds=allowance), limit)
        fired: list[tuple[Fire, datetime]] = []
        for (automation_id, path, key), window in list(windows.items()):
            automation = registry.get(automation_id)
            if automation is None:
                window.clear()  # paused, or deleted: its window goes
                continue
            trigger = automation.event_trigger(path)
            end = window.end
            fire = proactive_due(
                window,
                _identity(automation_id, path, key),
                threshold=trigger.threshold,
                within=trigger.within,
                rolling=not trigger.after,
            )
            if fire is not None:
                fired.append((fire, end))
        roots = await _climb(conn, registry, windows, fired)
        await buckets.write(conn, windows)
        await fire_all(conn, roots, settings, now, done)
    return done, len(windows)
