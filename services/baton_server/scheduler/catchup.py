"""Catch-up: what becomes of the slots missed while no scheduler ran.

A run made from a schedule that was never dispatched and is more than `missed_after` past its
slot was missed (its pool and queue are not paused: those runs simply wait). The schedule's
`catchup` policy decides, per schedule, among its missed runs: `all` runs every one within
`catchup_window`, `latest` only the newest within it, `none` none of them. The others become
Skipped (a Cancelled state), with the reason, so the gap is visible. Slots missed further back
than the window are not made at all (`horizon.py`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from baton_schemas import utcnow

from ..broker.outbox import OutboxRow
from ..db.types import Connection
from .horizon import schedules_of
from .marks import skip_run
from .policy import Catchup, resolve_policy

_MISSED = """
    SELECT fr.id, fr.schedule_id, fr.schedule_slot, d.id AS deployment_id, d.schedules,
           d.schedule_policy
    FROM flow_runs fr
    JOIN deployments d ON d.id = fr.deployment_id
    JOIN work_pools p ON p.name = fr.work_pool_name AND NOT p.paused
    JOIN work_queues q ON q.pool_id = p.id AND q.name = fr.work_queue_name AND NOT q.paused
    WHERE fr.state_type = 'SCHEDULED' AND fr.auto_scheduled AND fr.dispatched_version IS NULL
      AND NOT fr.overlap_held AND fr.run_count = 0
      AND fr.next_scheduled_time < now() - make_interval(secs => $1)
    ORDER BY fr.schedule_id, fr.schedule_slot
    LIMIT $2
    FOR UPDATE OF fr SKIP LOCKED"""


async def apply_catchup(conn: Connection, *, missed_after: float, limit: int = 5000) -> list[OutboxRow]:
    """Skip the missed runs their policy does not want, in the caller's transaction; the runs
    kept are dispatched by the same pass."""
    rows = await conn.fetch(_MISSED, missed_after, limit)
    by_schedule = defaultdict(list)
    for row in rows:
        by_schedule[row["schedule_id"]].append(row)
    now = utcnow()
    out: list[OutboxRow] = []
    for sid, missed in by_schedule.items():
        first = missed[0]
        entry = schedules_of(first).get(sid, (0, {}))[1]
        policy = resolve_policy(first["schedule_policy"], entry)
        window_start = now - policy.catchup_window
        within = [r for r in missed if r["schedule_slot"] >= window_start]
        keep = {
            Catchup.ALL: {r["id"] for r in within},
            Catchup.LATEST: {within[-1]["id"]} if within else set(),
            Catchup.NONE: set(),
        }[policy.catchup]
        for row in missed:
            if row["id"] in keep:
                continue
            if row["schedule_slot"] < window_start:
                reason = f"missed by more than the catch-up window ({_span(policy.catchup_window)})"
            elif policy.catchup is Catchup.LATEST:
                reason = "missed while no scheduler ran; catch-up 'latest' runs only the newest missed slot"
            else:
                reason = "missed while no scheduler ran; catch-up 'none' runs no missed slot"
            out += await skip_run(conn, row["id"], reason)
    return out


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600} h {seconds % 3600 // 60} min" if seconds >= 3600 else f"{seconds} s"
