"""Overlap: what a schedule's due run does while the schedule's previous run is still going.

Decided when the run is first dispatched, shortly before its slot. The previous run is "going"
while it is Pending, Running or Cancelling, or dispatched for an earlier slot and not yet
claimed. `allow` starts it anyway; `skip` makes it Skipped; `buffer_one` holds it (undispatched)
until the previous one ends, and skips any further one while one is held; `cancel_other` cancels
the previous run and starts this one.
"""

from __future__ import annotations

import uuid

from ..broker.outbox import OutboxRow
from ..db.types import Connection
from ..tracker.cancellation import cancel_flow_run
from .horizon import schedules_of
from .marks import skip_run
from .policy import Overlap, resolve_policy

# Runs with a schedule about to be dispatched for the first time (held ones included).
_DUE = """
    SELECT fr.id, fr.schedule_id, fr.schedule_slot, fr.overlap_held, d.id AS deployment_id,
           d.schedules, d.schedule_policy
    FROM flow_runs fr
    JOIN deployments d ON d.id = fr.deployment_id
    WHERE fr.state_type = 'SCHEDULED' AND fr.schedule_id IS NOT NULL AND fr.dispatched_version IS NULL
      AND fr.next_scheduled_time <= now() + make_interval(secs => $1)
      AND (COALESCE(d.schedule_policy->>'overlap', 'allow') <> 'allow'
           OR d.schedules::text LIKE '%"overlap"%')
    ORDER BY fr.schedule_slot
    LIMIT $2
    FOR UPDATE OF fr SKIP LOCKED"""

_GOING = """
    SELECT id, state_name FROM flow_runs
    WHERE schedule_id = $1 AND id <> $2
      AND (state_type IN ('PENDING', 'RUNNING', 'CANCELLING')
           OR (state_type = 'SCHEDULED' AND dispatched_version IS NOT NULL AND schedule_slot < $3))"""

_HELD = """
    SELECT id FROM flow_runs
    WHERE schedule_id = $1 AND id <> $2 AND state_type = 'SCHEDULED' AND overlap_held"""


async def apply_overlap(
    conn: Connection, *, within_seconds: float, default_lease_seconds: float, limit: int = 1000
) -> tuple[list[OutboxRow], int]:
    """Decide on the due runs whose schedule does not allow overlap, in the caller's transaction.
    Returns the outbox rows and how many runs are held."""
    out: list[OutboxRow] = []
    held = 0
    # a run let go by this pass is going for the later runs of its schedule (a backfill makes
    # several due at once)
    let_go: dict[str, uuid.UUID] = {}
    for row in await conn.fetch(_DUE, within_seconds, limit):
        entry = schedules_of(row).get(row["schedule_id"], (0, {}))[1]
        policy = resolve_policy(row["schedule_policy"], entry)
        if policy.overlap is Overlap.ALLOW:
            continue
        going = [
            (r["id"], r["state_name"])
            for r in await conn.fetch(_GOING, row["schedule_id"], row["id"], row["schedule_slot"])
        ]
        if row["schedule_id"] in let_go:
            going.append((let_go[row["schedule_id"]], "Scheduled, going now"))
        if not going:
            if row["overlap_held"]:
                await conn.execute("UPDATE flow_runs SET overlap_held = false WHERE id = $1", row["id"])
            let_go[row["schedule_id"]] = row["id"]
            continue
        previous = ", ".join(f"{run_id} ({name})" for run_id, name in going)
        if policy.overlap is Overlap.SKIP:
            out += await skip_run(
                conn, row["id"], f"overlap 'skip': the previous run is still going: {previous}"
            )
        elif policy.overlap is Overlap.BUFFER_ONE:
            if row["overlap_held"]:
                held += 1
            elif await conn.fetchval(_HELD, row["schedule_id"], row["id"]):
                out += await skip_run(
                    conn,
                    row["id"],
                    f"overlap 'buffer_one': a run already waits for the previous one: {previous}",
                )
            else:
                await conn.execute("UPDATE flow_runs SET overlap_held = true WHERE id = $1", row["id"])
                held += 1
        else:  # cancel_other
            let_go[row["schedule_id"]] = row["id"]
            for other, _ in going:
                outcome = await cancel_flow_run(
                    conn,
                    other,
                    default_lease_seconds=default_lease_seconds,
                    reason=f"overlap 'cancel_other': run {row['id']} of the same schedule is due",
                )
                out += outcome.outbox
    return out, held
