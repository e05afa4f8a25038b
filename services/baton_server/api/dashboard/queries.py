"""The SQL of the dashboard's read models. Each query is served by an index, for a store of
100,000s of runs and millions of task runs: tests/integration/test_dashboard_queries.py runs
EXPLAIN on each (and on the REST lists the pages page through) over tens of thousands of rows,
refusing a list whose plan scans flow_runs, task_runs or events, and a count that has no index
to use when sequential scans are made costly."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from baton_schemas.states import StateType

from ...db.rows import FLOW_RUN_COLUMNS
from ...db.types import Connection

MAX_TASK_RUNS = 2000
MAX_CHILDREN = 500


class RunFilter:
    """The runs list's filters, as SQL over `flow_runs fr JOIN flows f`."""

    def __init__(
        self,
        *,
        states: list[StateType] | None = None,
        flow_name: str | None = None,
        deployment_id: uuid.UUID | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.where: list[str] = []
        self.args: list[Any] = []
        if states:
            self.where.append(f"fr.state_type = ANY({self.arg([s.value for s in states])}::text[])")
        if flow_name:
            self.where.append(f"f.name = {self.arg(flow_name)}")
        if deployment_id:
            self.where.append(f"fr.deployment_id = {self.arg(deployment_id)}")
        if tags:
            self.where.append(f"fr.tags @> {self.arg(tags)}::text[]")

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def histogram_sql(
    wanted: RunFilter, since: datetime, until: datetime, step: timedelta
) -> tuple[str, list[Any]]:
    where = [
        *wanted.where,
        f"fr.created >= {wanted.arg(since)}",
        f"fr.created < {wanted.arg(until)}",
    ]
    sql = f"""SELECT date_bin({wanted.arg(step)}::interval, fr.created, {wanted.arg(since)}) AS bucket,
                     fr.state_type, count(*) AS n
              FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
              WHERE {" AND ".join(where)}
              GROUP BY 1, 2 ORDER BY 1"""
    return sql, wanted.args


async def histogram(
    conn: Connection, wanted: RunFilter, since: datetime, until: datetime, buckets: int
) -> dict[str, Any]:
    step = (until - since) / buckets
    sql, args = histogram_sql(wanted, since, until, step)
    rows = await conn.fetch(sql, *args)
    counts: list[dict[str, int]] = [{} for _ in range(buckets)]
    for row in rows:
        index = min(int((row["bucket"] - since) / step), buckets - 1)
        counts[index][row["state_type"]] = counts[index].get(row["state_type"], 0) + row["n"]
    return {
        "since": since,
        "until": until,
        "step_seconds": step.total_seconds(),
        "buckets": [{"start": since + step * i, "counts": c} for i, c in enumerate(counts)],
    }


TASK_RUNS_SQL = """SELECT id, name, task_key, dynamic_key, state_type, state_name, state, task_inputs,
                          start_time, end_time, created
                   FROM task_runs WHERE flow_run_id = $1 ORDER BY created, id LIMIT $2"""
CHILDREN_SQL = f"""SELECT {FLOW_RUN_COLUMNS} FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
                   WHERE fr.parent_flow_run_id = $1 ORDER BY fr.created LIMIT $2"""


async def run_graph(conn: Connection, run_id: uuid.UUID) -> dict[str, Any]:
    """A run's task runs with their inputs (the graph's edges), and its child runs: a subflow
    names the task run it was called from (`parent_task_run_id`)."""
    tasks = await conn.fetch(TASK_RUNS_SQL, run_id, MAX_TASK_RUNS + 1)
    children = await conn.fetch(CHILDREN_SQL, run_id, MAX_CHILDREN)
    return {
        "task_runs": [
            {
                "id": r["id"],
                "name": r["name"],
                "task_key": r["task_key"],
                "state": r["state"],
                "task_inputs": r["task_inputs"],
                "start_time": r["start_time"],
                "end_time": r["end_time"],
            }
            for r in tasks[:MAX_TASK_RUNS]
        ],
        "truncated": len(tasks) > MAX_TASK_RUNS,
        "children": [
            {
                "id": r["id"],
                "name": r["name"],
                "flow_name": r["flow_name"],
                "state": r["state"],
                "parent_task_run_id": r["parent_task_run_id"],
                "deployment_id": r["deployment_id"],
            }
            for r in children
        ],
    }


LATE_SQL = """SELECT deployment_id, count(*) AS n FROM flow_runs
              WHERE state_type = 'SCHEDULED' AND state_name = 'Late' AND deployment_id = ANY($1::uuid[])
              GROUP BY 1"""
TRIGGERS_SQL = """SELECT deployment_id, name, enabled FROM automations
                  WHERE deployment_id = ANY($1::uuid[]) ORDER BY name"""


async def deployment_summaries(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each deployment's Late count and the automations that are its triggers."""
    found: dict[uuid.UUID, dict[str, Any]] = {i: {"late": 0, "triggers": []} for i in ids}
    for row in await conn.fetch(LATE_SQL, ids):
        found[row["deployment_id"]]["late"] = row["n"]
    for row in await conn.fetch(TRIGGERS_SQL, ids):
        found[row["deployment_id"]]["triggers"].append({"name": row["name"], "enabled": row["enabled"]})
    return found


# owned runs per pool and queue (slots in use), and runs waiting in each queue (its depth)
ACTIVE_SQL = """SELECT work_pool_name, work_queue_name, count(*) AS n FROM flow_runs
                WHERE state_type IN ('PENDING', 'RUNNING', 'CANCELLING') AND work_pool_name IS NOT NULL
                GROUP BY 1, 2"""
WAITING_SQL = """SELECT work_pool_name, work_queue_name, count(*) AS n FROM flow_runs
                 WHERE state_type = 'SCHEDULED' AND work_pool_name IS NOT NULL
                   AND next_scheduled_time <= now()
                 GROUP BY 1, 2"""


async def pool_load(conn: Connection) -> dict[str, dict[str, dict[str, int]]]:
    """{pool: {queue: {"running": n, "waiting": n}}}: owned runs, and runs due but not taken."""
    load: dict[str, dict[str, dict[str, int]]] = {}
    for sql, field in ((ACTIVE_SQL, "running"), (WAITING_SQL, "waiting")):
        for row in await conn.fetch(sql):
            queue = load.setdefault(row["work_pool_name"], {}).setdefault(
                row["work_queue_name"] or "default", {"running": 0, "waiting": 0}
            )
            queue[field] += row["n"]
    return load


EVENT_SQL = """SELECT occurred, id, seq, event, resource_id, resource, related, payload, follows, received
               FROM events WHERE id = $1 AND occurred = $2"""
FIRED_SQL = """SELECT id, automation_name, kind, ok, actions, created FROM firings
               WHERE event_ids @> ARRAY[$1::uuid] ORDER BY created DESC LIMIT 100"""


async def event_with_firings(
    conn: Connection, event_id: uuid.UUID, occurred: datetime
) -> tuple[Any, list[dict[str, Any]]] | None:
    row = await conn.fetchrow(EVENT_SQL, event_id, occurred)
    if row is None:
        return None
    fired = [dict(r) for r in await conn.fetch(FIRED_SQL, event_id)]
    return row, fired
