"""Changes take effect: a deployment's schedules, as stored, against the runs made from them.

The API and `baton deploy` only write `deployments` (its `schedules` and `paused`); a trigger
records each changed deployment in `schedule_changes` and notifies the scheduler. Reconciling
one compares each schedule's fingerprint (what its runs were made from) with the one its runs
were made under: a schedule removed, paused, made inactive or changed loses the runs it made
that have not started (Scheduled and never run), and a new or changed one is filled afresh from
now. Runs that started, and backfilled runs, are never touched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..db.types import Connection
from .horizon import schedules_of
from .policy import fingerprint

_TAKE = """
    DELETE FROM schedule_changes WHERE deployment_id IN (
        SELECT deployment_id FROM schedule_changes ORDER BY changed LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING deployment_id"""

_DEPLOYMENTS = """
    SELECT d.id, d.paused, d.parameters, d.tags, d.work_pool_name, d.work_queue_name, d.retries,
           d.retry_delay_seconds, d.schedules
    FROM deployments d WHERE d.id = ANY($1::uuid[])"""

_STATES = """
    SELECT schedule_id, deployment_id, fingerprint FROM schedule_states
    WHERE deployment_id = ANY($1::uuid[]) ORDER BY schedule_id FOR UPDATE"""

# Not started: Scheduled and never run (an AwaitingRetry run has run once already). Runs of
# schedules the scheduler never knew (made before it kept state) go the same way.
_DELETE_UNSTARTED = """
    DELETE FROM flow_runs
    WHERE deployment_id = ANY($1::uuid[]) AND auto_scheduled AND state_type = 'SCHEDULED' AND run_count = 0
      AND (schedule_id = ANY($2::text[]) OR NOT (schedule_id = ANY($3::text[])))"""

_FORGET = "DELETE FROM schedule_states WHERE schedule_id = ANY($1::text[])"

_START = """
    INSERT INTO schedule_states (schedule_id, deployment_id, fingerprint, filled_until, next_fill)
    SELECT u.schedule_id, u.deployment_id, u.fingerprint, NULL, now()
    FROM unnest($1::text[], $2::uuid[], $3::text[]) AS u(schedule_id, deployment_id, fingerprint)
    ON CONFLICT (schedule_id) DO UPDATE SET deployment_id = EXCLUDED.deployment_id,
        fingerprint = EXCLUDED.fingerprint, filled_until = NULL, next_fill = now(), updated = now()"""


@dataclass
class Reconciled:
    deployments: int = 0
    removed_runs: int = 0
    started_schedules: int = 0


async def reconcile_changes(conn: Connection, *, limit: int = 500) -> Reconciled:
    """Reconcile up to `limit` changed deployments in the caller's transaction: a few statements
    for all of them."""
    ids = [r["deployment_id"] for r in await conn.fetch(_TAKE, limit)]
    done = Reconciled(deployments=len(ids))
    if ids:
        await reconcile_deployments(conn, ids, done)
    return done


async def reconcile_deployments(conn: Connection, ids: list[uuid.UUID], done: Reconciled) -> None:
    wanted: dict[str, tuple[uuid.UUID, str]] = {}
    for deployment in await conn.fetch(_DEPLOYMENTS, ids):
        if deployment["paused"]:
            continue
        for sid, (_, entry) in schedules_of(deployment).items():
            if entry.get("active", True):
                wanted[sid] = (deployment["id"], fingerprint(entry, deployment))
    current = {r["schedule_id"]: r["fingerprint"] for r in await conn.fetch(_STATES, ids)}
    stale = [sid for sid, fp in current.items() if sid not in wanted or wanted[sid][1] != fp]
    fresh = sorted(sid for sid, (_, fp) in wanted.items() if current.get(sid) != fp)
    status = await conn.execute(_DELETE_UNSTARTED, ids, stale, list(wanted))
    done.removed_runs += int(status.split()[-1])
    if stale:
        await conn.execute(_FORGET, stale)
    if fresh:
        await conn.execute(
            _START, fresh, [wanted[sid][0] for sid in fresh], [wanted[sid][1] for sid in fresh]
        )
        done.started_schedules += len(fresh)
