"""Many runs, task runs and events written straight into a Baton database with generate_series,
for the dashboard's query plans (tests/integration/test_dashboard_queries.py) and its benchmark
(bench/dashboard.py). Rows look like the API's: each run's `state` parses as a State."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from baton_schemas import utcnow
from baton_server.events.partitions import Partitions

FLOWS = 10
DEPLOYMENTS = 20
TAGS = 20
STATES = ("COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "RUNNING", "SCHEDULED", "CANCELLED")

_FLOWS_SQL = """INSERT INTO flows (id, name, slug)
                SELECT gen_random_uuid(), $1 || '-' || g, $1 || '-' || g FROM generate_series(0, $2 - 1) g
                RETURNING id"""

# run g: one of the flows and deployments in turn, a tag, a state; made `spread` apart, newest first
_RUNS_SQL = """
INSERT INTO flow_runs (id, name, flow_id, deployment_id, tags, state, state_type, state_name,
                       state_version, run_count, start_time, end_time, work_pool_name,
                       work_queue_name, created, updated)
SELECT gen_random_uuid(), 'bulk-' || g, ($1::uuid[])[1 + g % array_length($1, 1)],
       ($2::uuid[])[1 + g % array_length($2, 1)], ARRAY['t' || (g % $3)],
       jsonb_build_object('id', gen_random_uuid(), 'type', st, 'name', initcap(st), 'timestamp', at),
       st, initcap(st), 3, 1, at, CASE WHEN st IN ('RUNNING', 'SCHEDULED') THEN NULL ELSE at END,
       'bulk', 'default', at, at
FROM generate_series(1, $4) g,
     LATERAL (SELECT ($5::text[])[1 + g % array_length($5, 1)] AS st,
                     $6::timestamptz - g * $7::interval AS at) s"""

# `per_run` task runs of each run, each fed by the one before it (the graph's edges)
_TASK_RUNS_SQL = """
INSERT INTO task_runs (id, flow_run_id, name, task_key, dynamic_key, task_inputs, state, state_type,
                       state_name, state_version, run_count, start_time, end_time, created, updated)
SELECT gen_random_uuid(), fr.id, 'task-' || t, 'task-' || t, '0', '{}', fr.state, fr.state_type,
       fr.state_name, 3, 1, fr.created, fr.end_time, fr.created + t * interval '1 millisecond',
       fr.created
FROM flow_runs fr, generate_series(1, $1) t
WHERE fr.work_pool_name = 'bulk'"""

_EVENTS_SQL = """
INSERT INTO events (occurred, id, event, resource_id, resource, related, payload, received)
SELECT at, gen_random_uuid(), 'bulk.' || (g % 50), 'bulk.res.' || (g % 1000),
       jsonb_build_object('baton.resource.id', 'bulk.res.' || (g % 1000)), '[]',
       jsonb_build_object('n', g), at
FROM generate_series(1, $1) g, LATERAL (SELECT $2::timestamptz - g * $3::interval AS at) s"""


@dataclass(frozen=True)
class Filled:
    flow_names: list[str]
    deployment_ids: list[uuid.UUID]
    newest_run: uuid.UUID  # with its share of the task runs, as every run


async def fill(
    conn: asyncpg.Connection[Any],
    *,
    runs: int,
    task_runs: int,
    events: int = 0,
    days: float = 7.0,
    prefix: str = "bulk",
) -> Filled:
    """`runs` flow runs made over the last `days`, `task_runs` task runs spread over them, and
    `events` events over the same days; then ANALYZE, so the planner knows the sizes."""
    now = utcnow()
    spread = timedelta(days=days) / max(runs, 1)
    flow_ids = [r["id"] for r in await conn.fetch(_FLOWS_SQL, prefix, FLOWS)]
    deployment_ids = [uuid.uuid4() for _ in range(DEPLOYMENTS)]
    await conn.execute(_RUNS_SQL, flow_ids, deployment_ids, TAGS, runs, list(STATES), now, spread)
    if task_runs:
        await conn.execute(_TASK_RUNS_SQL, max(1, task_runs // max(runs, 1)))
    if events:
        first = (now - timedelta(days=days)).date()
        await Partitions().ensure(
            conn, [first + timedelta(days=d) for d in range((now.date() - first).days + 1)]
        )
        await conn.execute(_EVENTS_SQL, events, now, timedelta(days=days) / events)
    await conn.execute("ANALYZE flows; ANALYZE flow_runs; ANALYZE task_runs; ANALYZE events")
    newest = await conn.fetchval("SELECT id FROM flow_runs ORDER BY created DESC LIMIT 1")
    return Filled([f"{prefix}-{n}" for n in range(FLOWS)], deployment_ids, newest)
