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

_DEPLOYMENT = """
    SELECT d.id, d.paused, d.parameters, d.tags, d.work_pool_name, d.work_queue_name, d.retries,
           d.retry_delay_seconds, d.schedules
    FROM deployments d WHERE d.id = $1"""

_STATES = "SELECT schedule_id, fingerprint FROM schedule_states WHERE deployment_id = $1 FOR UPDATE"

# Not started: Scheduled and never run (an AwaitingRetry run has run once already).
_DELETE_UNSTARTED = """
    DELETE FROM flow_runs
    WHERE schedule_id = ANY($1::text[]) AND auto_scheduled AND state_type = 'SCHEDULED' AND run_count = 0"""

_DELETE_UNSTARTED_OF_DEPLOYMENT = """
    DELETE FROM flow_runs
    WHERE deployment_id = $1 AND auto_scheduled AND state_type = 'SCHEDULED' AND run_count = 0
      AND NOT (schedule_id = ANY($2::text[]))"""

_FORGET = "DELETE FROM schedule_states WHERE schedule_id = ANY($1::text[])"

_START = """
    INSERT INTO schedule_states (schedule_id, deployment_id, fingerprint, filled_until, next_fill)
    SELECT u.schedule_id, $1, u.fingerprint, NULL, now()
    FROM unnest($2::text[], $3::text[]) AS u(schedule_id, fingerprint)
    ON CONFLICT (schedule_id) DO UPDATE SET deployment_id = EXCLUDED.deployment_id,
        fingerprint = EXCLUDED.fingerprint, filled_until = NULL, next_fill = now(), updated = now()"""


@dataclass
class Reconciled:
    deployments: int = 0
    removed_runs: int = 0
    started_schedules: int = 0


async def reconcile_changes(conn: Connection, *, limit: int = 100) -> Reconciled:
    """Reconcile up to `limit` changed deployments in the caller's transaction."""
    done = Reconciled()
    for row in await conn.fetch(_TAKE, limit):
        await reconcile_deployment(conn, row["deployment_id"], done)
        done.deployments += 1
    return done


async def reconcile_deployment(conn: Connection, deployment_id: uuid.UUID, done: Reconciled) -> None:
    deployment = await conn.fetchrow(_DEPLOYMENT, deployment_id)
    wanted: dict[str, str] = {}
    if deployment is not None and not deployment["paused"]:
        for sid, (_, entry) in schedules_of(deployment).items():
            if entry.get("active", True):
                wanted[sid] = fingerprint(entry, deployment)
    current = {r["schedule_id"]: r["fingerprint"] for r in await conn.fetch(_STATES, deployment_id)}
    stale = [sid for sid, fp in current.items() if wanted.get(sid) != fp]
    fresh = [sid for sid, fp in wanted.items() if current.get(sid) != fp]
    if stale:
        status = await conn.execute(_DELETE_UNSTARTED, stale)
        done.removed_runs += int(status.split()[-1])
        await conn.execute(_FORGET, stale)
    # runs of schedules the scheduler never knew (made before it kept state) go the same way
    status = await conn.execute(_DELETE_UNSTARTED_OF_DEPLOYMENT, deployment_id, list(wanted))
    done.removed_runs += int(status.split()[-1])
    if fresh:
        await conn.execute(_START, deployment_id, fresh, [wanted[sid] for sid in fresh])
        done.started_schedules += len(fresh)
