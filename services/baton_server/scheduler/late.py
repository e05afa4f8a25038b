"""Late: a deployment run still Scheduled more than `late_after` past its time becomes Late.

`late_after` is the deployment's (its schedule policy), else its pool's, else the server's
default (15 s). Only runs in the plain Scheduled state are looked at, under a row lock taken with
SKIP LOCKED: a run is marked Late once, whatever number of scheduler replicas look, and a Late
run is never marked again (the reference system floods the same marking).
"""

from __future__ import annotations

from ..broker.outbox import OutboxRow
from ..db.types import Connection
from ..metrics import MARKED_LATE
from .marks import mark_late

_LATE_AFTER = "COALESCE((d.schedule_policy->>'late_after')::float8, p.late_after_seconds, $1)"

# $2, the least late_after of any deployment or pool, bounds the scan of the index
_LATE = f"""
    SELECT fr.id, fr.next_scheduled_time, {_LATE_AFTER} AS late_after
    FROM flow_runs fr
    LEFT JOIN deployments d ON d.id = fr.deployment_id
    LEFT JOIN work_pools p ON p.name = fr.work_pool_name
    WHERE fr.state_type = 'SCHEDULED' AND fr.state_name = 'Scheduled' AND fr.work_pool_name IS NOT NULL
      AND fr.next_scheduled_time < now() - make_interval(secs => $2)
      AND fr.next_scheduled_time + make_interval(secs => {_LATE_AFTER}) < now()
    ORDER BY fr.next_scheduled_time
    LIMIT $3
    FOR UPDATE OF fr SKIP LOCKED"""

# When the next run becomes Late (the scheduler sleeps until then): among the earliest plain
# Scheduled runs.
NEXT_LATE = f"""
    SELECT min(fr.next_scheduled_time + make_interval(secs => {_LATE_AFTER}))
    FROM (SELECT deployment_id, work_pool_name, next_scheduled_time FROM flow_runs
          WHERE state_type = 'SCHEDULED' AND state_name = 'Scheduled' AND work_pool_name IS NOT NULL
          ORDER BY next_scheduled_time LIMIT 200) fr
    LEFT JOIN deployments d ON d.id = fr.deployment_id
    LEFT JOIN work_pools p ON p.name = fr.work_pool_name"""

MIN_LATE_AFTER = """
    SELECT least(
        (SELECT min((schedule_policy->>'late_after')::float8) FROM deployments
         WHERE schedule_policy ? 'late_after'),
        (SELECT min(late_after_seconds) FROM work_pools))"""


async def mark_late_runs(
    conn: Connection, *, default_late_after: float, min_late_after: float, limit: int = 500
) -> list[OutboxRow]:
    """Mark the runs that are late, in the caller's transaction."""
    out: list[OutboxRow] = []
    for row in await conn.fetch(_LATE, default_late_after, min_late_after, limit):
        marked = await mark_late(conn, row["id"], row["next_scheduled_time"], float(row["late_after"]))
        if marked:
            MARKED_LATE.inc()
        out += marked
    return out
