"""Fire-and-forget batches: task-run states, logs and heartbeats, each stored in one transaction.

Task runs are created by their first reported state (the client chose the id). A report's
`version` is the reporter's own counter: the newest version becomes the task run's state, every
report lands in the history once (its state id is unique), and only new states are published.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson

from baton_schemas.envelopes import Heartbeat, TaskRunStateReport
from baton_schemas.logs import LogRecord
from baton_schemas.runs import TaskRunInfo
from baton_schemas.states import TERMINAL_TYPES, StateType
from baton_schemas.topology import EVENTS, STATES

from ..broker.messages import TaskRunChanges, serialise_state
from ..broker.outbox import OutboxMessage, OutboxRow
from ..db.types import Connection
from ..events.state_events import TaskRunEvents
from ..metrics import LOGS_STORED, TASK_RUN_STATES

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Latest:
    report: TaskRunStateReport
    ordinal: int  # the report's place in the batch, from 1
    first_seen: datetime
    first_running: datetime | None = None
    ended: datetime | None = None


# Per-state lookups in this module key on a UUID's integer: uuid.UUID hashes and compares in
# Python, an int in C, and a batch does several lookups per state.


def _fold(reports: list[TaskRunStateReport]) -> dict[int, _Latest]:
    """Each task run's newest report, its first sighting, first Running and end, in one pass."""
    by_run: dict[int, _Latest] = {}
    for ordinal, report in enumerate(reports, start=1):
        state = report.state
        timestamp = state.timestamp
        key = report.task_run.id.int
        entry = by_run.get(key)
        if entry is None:
            entry = by_run[key] = _Latest(report, ordinal, timestamp)
        else:
            if timestamp < entry.first_seen:
                entry.first_seen = timestamp
            if report.version > entry.report.version:
                entry.report, entry.ordinal = report, ordinal
        if state.type is StateType.RUNNING:
            if entry.first_running is None or timestamp < entry.first_running:
                entry.first_running = timestamp
        elif state.type in TERMINAL_TYPES:
            entry.ended = timestamp
    return by_run


# One statement: the history rows first (a redelivered report's row exists already and is
# skipped), then the task runs, counting a run attempt for each new Running state, then an outbox
# row for each new state. The history rows' foreign key is checked at the end of the statement,
# when their task runs exist.
_STORE = f"""
    WITH reported AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[],
            $6::timestamptz[], $7::text[], $8::text[], $9::bytea[])
            WITH ORDINALITY AS r(id, task_run_id, version, type, name, timestamp, state,
                                 routing_key, body, ord)
    ), new_states AS (
        INSERT INTO states (id, task_run_id, version, type, name, timestamp, state)
        SELECT id, task_run_id, version, type, name, timestamp, state::jsonb FROM reported
        ON CONFLICT (id) DO NOTHING
        RETURNING id, task_run_id, type
    ), attempts AS (
        SELECT task_run_id, count(*) FILTER (WHERE type = 'RUNNING') AS n
        FROM new_states GROUP BY task_run_id
    ), task_runs_written AS (
        INSERT INTO task_runs AS t (id, flow_run_id, name, task_key, dynamic_key, tags,
            task_inputs, cache_key, state, state_type, state_name, state_version,
            run_count, start_time, end_time, created)
        SELECT u.id, u.flow_run_id, u.name, u.task_key, u.dynamic_key,
            ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)), u.task_inputs::jsonb, u.cache_key,
            s.state::jsonb, s.type, s.name, s.version, COALESCE(a.n, 0),
            u.start_time, u.end_time, u.created
        FROM unnest($10::uuid[], $11::uuid[], $12::text[], $13::text[], $14::text[],
            $15::text[], $16::text[], $17::text[], $18::int[], $19::timestamptz[],
            $20::timestamptz[], $21::timestamptz[])
            AS u(id, flow_run_id, name, task_key, dynamic_key, tags, task_inputs, cache_key,
                 latest, start_time, end_time, created)
        JOIN reported s ON s.ord = u.latest
        LEFT JOIN attempts a ON a.task_run_id = u.id
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
            run_count = t.run_count + EXCLUDED.run_count,
            updated = now()
    ), sent AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT $22, r.routing_key, r.id, r.body, false
        FROM reported r JOIN new_states n ON n.id = r.id
        ORDER BY r.ord
        RETURNING id, message_id
    ), events AS (
        -- the states' events, where task-run events are turned on (a NULL body elsewhere)
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT '{EVENTS}', e.key, r.id, e.body, true
        FROM reported r JOIN new_states n ON n.id = r.id
        JOIN unnest($23::text[], $24::bytea[]) WITH ORDINALITY AS e(key, body, ord) ON e.ord = r.ord
        WHERE e.body IS NOT NULL
        ORDER BY r.ord
        RETURNING id, message_id
    )
    SELECT id, message_id, false AS event FROM sent
    UNION ALL SELECT id, message_id, true FROM events
    ORDER BY id"""


async def store_task_run_states(
    conn: Connection, reports: list[TaskRunStateReport], *, events: bool = False
) -> list[OutboxRow]:
    """Store a batch in one transaction; returns the outbox rows of the states that are new.

    Each new state is also an event where task-run events are on: `events` (everywhere), or the
    flow run's deployment's `task_run_events`."""
    flow_run_ids = list({r.task_run.flow_run_id.int: r.task_run.flow_run_id for r in reports}.values())
    async with conn.transaction():
        flow_runs = {
            row["id"].int: row
            for row in await conn.fetch(
                """SELECT fr.id, fr.flow_id, fr.deployment_id, f.name AS flow_name, f.slug AS flow_slug,
                       COALESCE(d.task_run_events, false) AS task_run_events
                   FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
                   LEFT JOIN deployments d ON d.id = fr.deployment_id
                   WHERE fr.id = ANY($1::uuid[])""",
                flow_run_ids,
            )
        }
        makers = {
            key: TaskRunEvents(row) if events or row["task_run_events"] else None
            for key, row in flow_runs.items()
        }
        changes = {key: TaskRunChanges(row) for key, row in flow_runs.items()}
        kept = [r for r in reports if r.task_run.flow_run_id.int in changes]
        if len(kept) < len(reports):
            log.warning("dropped %d task-run states of unknown flow runs", len(reports) - len(kept))
        if not kept:
            return []
        # each state serialised once: its history row, its task run's row and its message
        states_json = [serialise_state(r.state) for r in kept]
        messages = [
            changes[r.task_run.flow_run_id.int].message(r, j) for r, j in zip(kept, states_json, strict=True)
        ]
        # most flow runs make no task-run events: then nothing to build, nothing to join
        state_events = _events(kept, makers) if any(makers.values()) else []
        runs = [(entry.report.task_run, entry) for entry in _fold(kept).values()]
        states = [r.state for r in kept]
        for state_type, n in collections.Counter(state.type for state in states).items():
            TASK_RUN_STATES.labels(state_type).inc(n)
        written = await conn.fetch(
            _STORE,
            [state.id for state in states],
            [r.task_run.id for r in kept],
            [r.version for r in kept],
            [state.type for state in states],  # a StrEnum: its value is the string
            [state.name for state in states],
            [state.timestamp for state in states],
            [j.decode() for j in states_json],
            [m.routing_key for m in messages],
            [m.body for m in messages],
            [info.id for info, _ in runs],
            [info.flow_run_id for info, _ in runs],
            [info.name for info, _ in runs],
            [info.task_key for info, _ in runs],
            [info.dynamic_key for info, _ in runs],
            # unnest cannot carry a text[] per row (asyncpg would read a 2-D array): JSON text
            [orjson.dumps(info.tags).decode() for info, _ in runs],
            [_task_inputs_json(info) for info, _ in runs],
            [info.cache_key for info, _ in runs],
            [entry.ordinal for _, entry in runs],
            [entry.first_running for _, entry in runs],
            [entry.ended for _, entry in runs],
            # created when the client first reported it: lists follow the run's own order
            [entry.first_seen for _, entry in runs],
            STATES,
            [None if e is None else e.routing_key for e in state_events],
            [None if e is None else e.body for e in state_events],
        )
        # a redelivered report's state was stored and sent already: no row, nothing to send
        by_id = {m.message_id.int: m for m in messages}
        events_by_id = {e.message_id.int: e for e in state_events if e is not None}
        return [
            OutboxRow(row["id"], (events_by_id if row["event"] else by_id)[row["message_id"].int])
            for row in written
        ]


def _events(
    kept: list[TaskRunStateReport], makers: dict[int, TaskRunEvents | None]
) -> list[OutboxMessage | None]:
    """Each report's event, None where task-run events are off. Its `follows` is the previous
    state of its task run in the same batch, if there is one."""
    events: list[OutboxMessage | None] = []
    previous: dict[int, TaskRunStateReport] = {}
    for report in kept:
        info = report.task_run
        before = previous.get(info.id.int)
        if before is None or before.version < report.version:
            previous[info.id.int] = report
        maker = makers[info.flow_run_id.int]
        if maker is None:
            events.append(None)
            continue
        follows = before.state if before is not None and before.version < report.version else None
        events.append(
            maker.message(
                info.id, info.name, info.tags, report.state, version=report.version, previous=follows
            )
        )
    return events


def _task_inputs_json(info: TaskRunInfo) -> str:
    if not info.task_inputs:
        return "{}"  # most task runs: skip the serialiser
    return orjson.dumps(info.model_dump(mode="json", include={"task_inputs"})["task_inputs"]).decode()


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
    stored = int(result.split()[-1])
    LOGS_STORED.inc(stored)
    return stored


async def extend_leases(conn: Connection, heartbeat: Heartbeat) -> int:
    """Extend the leases of runs the sender still owns. Returns how many were extended."""
    if not heartbeat.flow_run_ids:
        return 0
    result = await conn.execute(
        """UPDATE flow_runs
           SET lease_expires_at = now() + make_interval(secs => COALESCE(lease_seconds, $2))
           WHERE id = ANY($1::uuid[])
             AND (state_type IN ('PENDING', 'RUNNING', 'CANCELLING')
                  -- paused with its process waiting (a Suspended run holds no lease)
                  OR (state_type = 'PAUSED' AND lease_expires_at IS NOT NULL))
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
