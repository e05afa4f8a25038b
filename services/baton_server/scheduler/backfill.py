"""Backfill: runs for the slots of a past range of a deployment's schedules.

Each slot's run carries the same idempotency key a scheduled run of it would
(`schedule:{schedule id}:{slot}`), so a backfill run twice, or over a slot that ran on schedule,
makes nothing new. Backfilled runs are due now (their slot is kept in `schedule_slot`), are not
auto-scheduled (a change of schedule leaves them alone, catch-up does not skip them), and go
through dispatch like every run: the overlap policy of their schedule and the concurrency limits
at claim apply. A range with more slots than the cap is refused, naming the cap.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from baton_schemas import utcnow
from baton_schemas.backfill import BackfillCreate, BackfillResult, BackfillSlot
from baton_schemas.schedules import DeploymentSchedule
from baton_schemas.slots import iter_slots

from ..broker.outbox import OutboxRow
from ..db.types import Connection
from .horizon import NewRun, idempotency_key, insert_runs, schedules_of


class BackfillRefused(ValueError):
    """A backfill that cannot be done as asked (too many slots, an unknown schedule)."""


_DEPLOYMENT = """
    SELECT d.id, d.name, d.flow_id, f.name AS flow_name, f.slug AS flow_slug, d.parameters, d.tags,
           d.work_pool_name, d.work_queue_name, d.retries, d.retry_delay_seconds, d.schedules
    FROM deployments d JOIN flows f ON f.id = d.flow_id WHERE d.id = $1"""


async def backfill(
    conn: Connection, deployment_id: uuid.UUID, request: BackfillCreate, *, cap: int
) -> tuple[BackfillResult, list[OutboxRow]] | None:
    """None if the deployment does not exist. Raises BackfillRefused."""
    deployment = await conn.fetchrow(_DEPLOYMENT, deployment_id)
    if deployment is None:
        return None
    now = utcnow()
    end = min(request.end, now)
    chosen = _schedules(deployment, request.schedules)
    slots: list[tuple[str, DeploymentSchedule, datetime]] = []
    for sid, schedule in chosen:
        for slot in iter_slots(schedule.schedule, request.start - timedelta(microseconds=1)):
            if slot >= end:
                break
            slots.append((sid, schedule, slot))
            if len(slots) > cap:
                raise BackfillRefused(
                    f"the range has more than {cap} slots (BATON_BACKFILL_MAX_RUNS): backfill a shorter one"
                )
    slots.sort(key=lambda s: s[2])
    out: list[OutboxRow] = []
    created = 0
    if not request.dry_run and slots:
        runs = [
            NewRun(
                sid, slot, now, {**deployment["parameters"], **schedule.parameters}, deployment, auto=False
            )
            for sid, schedule, slot in slots
        ]
        for start in range(0, len(runs), 1000):
            made, rows = await insert_runs(conn, runs[start : start + 1000])
            created += made
            out += rows
    made_ids = await _runs_of(conn, [idempotency_key(sid, slot) for sid, _, slot in slots])
    new_ids = {row.message.ordering_key for row in out if row.message.ordering_key is not None}
    found = [
        BackfillSlot(
            schedule_id=sid,
            schedule_slug=schedule.slug,
            slot=slot,
            flow_run_id=made_ids.get(idempotency_key(sid, slot)),
            created=made_ids.get(idempotency_key(sid, slot)) in new_ids,
        )
        for sid, schedule, slot in slots
    ]
    existing = sum(1 for s in found if s.flow_run_id is not None and not s.created)
    return BackfillResult(
        deployment_id=deployment_id, dry_run=request.dry_run, slots=found, created=created, existing=existing
    ), out


def _schedules(deployment: Any, slugs: list[str] | None) -> list[tuple[str, DeploymentSchedule]]:
    chosen = []
    known = set()
    for sid, (_, entry) in schedules_of(deployment).items():
        schedule = DeploymentSchedule.model_validate(entry)
        known.add(schedule.slug)
        if (slugs is None and schedule.active) or (slugs is not None and schedule.slug in slugs):
            chosen.append((sid, schedule))
    unknown = sorted(set(slugs or ()) - known)
    if unknown:
        raise BackfillRefused(f"the deployment has no schedule {', '.join(map(repr, unknown))}")
    return chosen


async def _runs_of(conn: Connection, keys: list[str]) -> dict[str, uuid.UUID]:
    rows = await conn.fetch(
        "SELECT idempotency_key, id FROM flow_runs WHERE idempotency_key = ANY($1::text[])", keys
    )
    return {r["idempotency_key"]: r["id"] for r in rows}
