"""Fire-and-forget batches: task-run states, logs and heartbeats, each stored in one transaction.

Task runs are created by their first reported state (the client chose the id). A report's
`version` is the reporter's own counter: the newest version becomes the task run's state, every
report lands in the history once (its state id is unique), and only new states are published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import orjson

from baton_schemas.envelopes import Heartbeat, TaskRunStateReport
from baton_schemas.logs import LogRecord
from baton_schemas.states import StateType

from ..broker.messages import task_run_change_message
from ..broker.outbox import Outbox, OutboxRow
from ..db.types import Connection

log = logging.getLogger(__name__)


@dataclass
class _Latest:
    report: TaskRunStateReport
    first_seen: datetime
    first_running: datetime | None = None
    ended: datetime | None = None
    reports: list[TaskRunStateReport] = field(default_factory=list)


def _fold(reports: list[TaskRunStateReport]) -> dict[UUID, _Latest]:
    by_run: dict[UUID, _Latest] = {}
    for report in reports:
        entry = by_run.setdefault(report.task_run.id, _Latest(report, report.state.timestamp))
        entry.reports.append(report)
        entry.first_seen = min(entry.first_seen, report.state.timestamp)
        if report.version > entry.report.version:
            entry.report = report
        state = report.state
        if state.type is StateType.RUNNING:
            if entry.first_running is None or state.timestamp < entry.first_running:
                entry.first_running = state.timestamp
        if state.is_terminal:
            entry.ended = state.timestamp
    return by_run


async def store_task_run_states(conn: Connection, reports: list[TaskRunStateReport]) -> list[OutboxRow]:
    flow_run_ids = list({r.task_run.flow_run_id for r in reports})
    async with conn.transaction():
        known = {
            row["id"]: row
            for row in await conn.fetch(
                """SELECT fr.id, fr.name, fr.flow_id, fr.deployment_id, fr.tags,
                          f.name AS flow_name, f.slug AS flow_slug
                   FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
                   WHERE fr.id = ANY($1::uuid[])""",
                flow_run_ids,
            )
        }
        kept = [r for r in reports if r.task_run.flow_run_id in known]
        if len(kept) < len(reports):
            log.warning("dropped %d task-run states of unknown flow runs", len(reports) - len(kept))
        if not kept:
            return []
        folded = _fold(kept)
        latest = [entry.report for entry in folded.values()]
        states_json = [r.state.model_dump(mode="json") for r in kept]
        latest_json = {id(r): states_json[i] for i, r in enumerate(kept)}
        await conn.execute(
            """INSERT INTO task_runs AS t (id, flow_run_id, name, task_key, dynamic_key, tags,
                   task_inputs, cache_key, state, state_type, state_name, state_version,
                   run_count, start_time, end_time, created)
               SELECT u.id, u.flow_run_id, u.name, u.task_key, u.dynamic_key,
                   ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)), u.task_inputs, u.cache_key,
                   u.state, u.state_type, u.state_name, u.state_version, u.run_count,
                   u.start_time, u.end_time, u.created
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                   $6::text[], $7::jsonb[], $8::text[], $9::jsonb[], $10::text[], $11::text[],
                   $12::int[], $13::int[], $14::timestamptz[], $15::timestamptz[],
                   $16::timestamptz[])
                   AS u(id, flow_run_id, name, task_key, dynamic_key, tags, task_inputs, cache_key,
                        state, state_type, state_name, state_version, run_count, start_time,
                        end_time, created)
               ON CONFLICT (id) DO UPDATE SET
                   start_time = COALESCE(t.start_time, EXCLUDED.start_time),
                   end_time = COALESCE(EXCLUDED.end_time, t.end_time),
                   cache_key = COALESCE(EXCLUDED.cache_key, t.cache_key),
                   state = CASE WHEN EXCLUDED.state_version > t.state_version
                                THEN EXCLUDED.state ELSE t.state END,
                   state_type = CASE WHEN EXCLUDED.state_version > t.state_version
                                THEN EXCLUDED.state_type ELSE t.state_type END,
                   state_name = CASE WHEN EXCLUDED.state_version > t.state_version
                                THEN EXCLUDED.state_name ELSE t.state_name END,
                   state_version = GREATEST(t.state_version, EXCLUDED.state_version),
                   updated = now()""",
            [r.task_run.id for r in latest],
            [r.task_run.flow_run_id for r in latest],
            [r.task_run.name for r in latest],
            [r.task_run.task_key for r in latest],
            [r.task_run.dynamic_key for r in latest],
            # unnest cannot carry a text[] per row (asyncpg would read a 2-D array): JSON text
            [orjson.dumps(r.task_run.tags).decode() for r in latest],
            [r.task_run.model_dump(mode="json")["task_inputs"] for r in latest],
            [r.task_run.cache_key for r in latest],
            [latest_json[id(r)] for r in latest],
            [r.state.type.value for r in latest],
            [r.state.name for r in latest],
            [r.version for r in latest],
            [0 for _ in latest],  # counted below from the states that are new
            [folded[r.task_run.id].first_running for r in latest],
            [folded[r.task_run.id].ended for r in latest],
            # created when the client first reported it: lists follow the run's own order
            [folded[r.task_run.id].first_seen for r in latest],
        )
        inserted = {
            row["id"]
            for row in await conn.fetch(
                """INSERT INTO states (id, task_run_id, version, type, name, timestamp, state)
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::jsonb[])
                   ON CONFLICT (id) DO NOTHING RETURNING id""",
                [r.state.id for r in kept],
                [r.task_run.id for r in kept],
                [r.version for r in kept],
                [r.state.type.value for r in kept],
                [r.state.name for r in kept],
                [r.state.timestamp for r in kept],
                states_json,
            )
        }
        attempts: dict[UUID, int] = {}
        for report in kept:
            if report.state.id in inserted and report.state.type is StateType.RUNNING:
                attempts[report.task_run.id] = attempts.get(report.task_run.id, 0) + 1
        if attempts:
            await conn.execute(
                """UPDATE task_runs t SET run_count = t.run_count + n.attempts
                   FROM unnest($1::uuid[], $2::int[]) AS n(id, attempts) WHERE t.id = n.id""",
                list(attempts),
                list(attempts.values()),
            )
        messages = [
            task_run_change_message(report, states_json[i], known[report.task_run.flow_run_id])
            for i, report in enumerate(kept)
            if report.state.id in inserted  # else a redelivered report: stored and sent already
        ]
        return await Outbox.add(conn, messages)


async def store_logs(conn: Connection, logs: list[LogRecord]) -> int:
    result = await conn.execute(
        """INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::smallint[],
               $6::text[], $7::timestamptz[])
           ON CONFLICT (id) DO NOTHING""",
        [r.id for r in logs],
        [r.flow_run_id for r in logs],
        [r.task_run_id for r in logs],
        [r.name for r in logs],
        [r.level for r in logs],
        [r.message for r in logs],
        [r.timestamp for r in logs],
    )
    await conn.execute("SELECT pg_notify('baton_logs', '')")
    return int(result.split()[-1])


async def extend_leases(conn: Connection, heartbeat: Heartbeat) -> int:
    """Extend the leases of runs the sender still owns. Returns how many were extended."""
    if not heartbeat.flow_run_ids:
        return 0
    result = await conn.execute(
        """UPDATE flow_runs
           SET lease_expires_at = now() + make_interval(secs => COALESCE(lease_seconds, $2))
           WHERE id = ANY($1::uuid[])
             AND state_type IN ('PENDING', 'RUNNING', 'CANCELLING')
             AND ($3::text IS NULL OR worker_id IS NULL OR worker_id = $3)""",
        heartbeat.flow_run_ids,
        heartbeat.lease_seconds,
        heartbeat.worker_id,
    )
    return int(result.split()[-1])


async def cancelling_runs(conn: Connection, flow_run_ids: list[UUID]) -> list[UUID]:
    """Those of a heartbeat's runs that are being cancelled: its sender should stop them."""
    if not flow_run_ids:
        return []
    rows = await conn.fetch(
        "SELECT id FROM flow_runs WHERE id = ANY($1::uuid[]) AND state_type = 'CANCELLING'", flow_run_ids
    )
    return [row["id"] for row in rows]
