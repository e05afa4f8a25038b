"""The plans of the dashboard's queries, from the real PostgreSQL over a store big enough for its
planner to prefer indexes (tens of thousands of runs, task runs and events): the keyset-paginated
lists (runs, a run's task runs and child runs, events, an event's firings) never scan flow_runs,
task_runs or events; the counts (histogram, Late, slots in use, queue depth) have an index to use.

Each query is built by the code the API runs, given a connection that asks EXPLAIN of each
statement instead of running it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import asyncpg
import pytest

from baton_schemas import utcnow
from baton_schemas.states import StateType
from baton_server.api.dashboard import queries
from baton_server.api.routes.task_runs import list_task_runs
from baton_server.db.flow_runs import encode_cursor, list_flow_runs
from baton_server.db.migrate import upgrade_database
from baton_server.db.types import Connection
from baton_server.events.store import EventFilter, read_events

from ..support.backends import Backends, _create_database, _drop_database
from ..support.bulk_rows import Filled, fill

BIG_TABLES = ("flow_runs", "task_runs", "events")
RUNS, TASK_RUNS, EVENTS = 20_000, 100_000, 20_000


class Explaining:
    """Stands in for the connection a query function is given: each statement is planned by the
    real database (EXPLAIN, with its parameters bound) and answered with no rows."""

    def __init__(self, conn: asyncpg.Connection[Any], small: frozenset[str] = frozenset()) -> None:
        self.conn = conn
        self.plans: list[tuple[str, dict[str, Any]]] = []
        # tables and partitions too small for an index to pay (read once the fill is analysed)
        self.small = small

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        plan = await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        self.plans.append((sql, json.loads(plan)[0]["Plan"]))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        taken, self.plans = self.plans, []
        assert taken, "the function asked nothing of the database"
        return taken


def seq_scans(plan: dict[str, Any], small: frozenset[str] = frozenset()) -> list[str]:
    """The big tables (or their partitions) that a plan reads from end to end. A partition of a
    few rows (today's, just after midnight) is rightly scanned: `small` names those."""
    found = []
    relation = plan.get("Relation Name", "")
    if plan["Node Type"] == "Seq Scan" and relation.startswith(BIG_TABLES) and relation not in small:
        found.append(relation)
    for child in plan.get("Plans", []):
        found += seq_scans(child, small)
    return found


def assert_indexed(plans: list[tuple[str, dict[str, Any]]], small: frozenset[str] = frozenset()) -> None:
    for sql, plan in plans:
        scans = seq_scans(plan, small)
        assert not scans, f"a sequential scan of {scans} for:\n{sql}\n{json.dumps(plan)}"


SMALL_ROWS = 1_000  # below this, a sequential scan is the better plan, and no sign of a missing index


async def small_relations(conn: asyncpg.Connection[Any]) -> frozenset[str]:
    rows = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples >= 0 AND reltuples < $1",
        SMALL_ROWS,
    )
    return frozenset(row["relname"] for row in rows)


@pytest.fixture(scope="module")
async def store(backends: Backends) -> AsyncIterator[tuple[Explaining, Filled]]:
    server, _, _ = backends.database_url.rpartition("/")
    name = f"baton_test_plans_{uuid.uuid4().hex[:8]}"
    await _create_database(f"{server}/postgres", name)
    try:
        await upgrade_database(f"{server}/{name}")
        conn = await asyncpg.connect(f"{server}/{name}")
        try:
            filled = await fill(conn, runs=RUNS, task_runs=TASK_RUNS, events=EVENTS, days=3)
            yield Explaining(conn, await small_relations(conn)), filled
        finally:
            await conn.close()
    finally:
        await _drop_database(f"{server}/postgres", name)


async def test_the_runs_list_with_each_filter_and_page_uses_an_index(
    store: tuple[Explaining, Filled],
) -> None:
    explain, filled = store
    conn = cast(Connection, explain)
    now = utcnow()
    cursor = encode_cursor(now - timedelta(hours=30), uuid.uuid4())
    for filters in (
        {},
        {"cursor": cursor},
        {"states": [StateType.FAILED]},
        {"states": [StateType.RUNNING, StateType.PENDING], "cursor": cursor},
        {"flow_name": filled.flow_names[3]},
        {"deployment_id": filled.deployment_ids[5], "cursor": cursor},
        {"tags": ["t7"]},
        {"since": now - timedelta(hours=24)},
        {"since": now - timedelta(hours=1), "states": [StateType.COMPLETED]},
        {"flow_name": filled.flow_names[1], "states": [StateType.FAILED], "cursor": cursor},
    ):
        await list_flow_runs(conn, limit=50, **filters)  # type: ignore[arg-type]
        assert_indexed(explain.take(), explain.small)


async def test_a_runs_page_task_runs_children_and_logs_use_an_index(store: tuple[Explaining, Filled]) -> None:
    explain, filled = store
    conn = cast(Connection, explain)
    await queries.run_graph(conn, filled.newest_run)
    plans = explain.take()
    assert len(plans) == 2  # its task runs, its child runs
    assert_indexed(plans, explain.small)
    cursor = encode_cursor(utcnow() - timedelta(days=1), uuid.uuid4())
    for page in (None, cursor):
        await list_task_runs(filled.newest_run, conn, None, page, 200)  # type: ignore[arg-type]
        assert_indexed(explain.take(), explain.small)


async def test_the_event_feed_and_an_events_page_use_an_index(store: tuple[Explaining, Filled]) -> None:
    explain, _ = store
    conn = cast(Connection, explain)
    now = utcnow()
    cursor = encode_cursor(now - timedelta(hours=20), uuid.uuid4())
    for wanted, page in (
        (EventFilter.parse(), None),
        (EventFilter.parse(), cursor),
        (EventFilter.parse(["bulk.7"]), None),
        (EventFilter.parse(["bulk.7"]), cursor),
        (EventFilter.parse(resource=["baton.resource.id=bulk.res.42"]), None),
        (EventFilter.parse(since=now - timedelta(hours=1)), None),
    ):
        await read_events(conn, wanted, cursor=page, limit=100)
        assert_indexed(explain.take(), explain.small)
    event = await explain.conn.fetchrow("SELECT id, occurred FROM events ORDER BY occurred DESC LIMIT 1")
    assert event is not None
    for sql, args in (
        (queries.EVENT_SQL, (event["id"], event["occurred"])),
        (queries.FIRED_SQL, (event["id"],)),
    ):
        await explain.fetch(sql, *args)
    assert_indexed(explain.take(), explain.small)


async def test_every_count_the_pages_show_has_an_index_to_use(store: tuple[Explaining, Filled]) -> None:
    """Counts read every row they count: with sequential scans made costly, each is still
    answered through an index (none is left with only a scan of the whole table)."""
    explain, filled = store
    conn = cast(Connection, explain)
    now = utcnow()
    await explain.conn.execute("SET enable_seqscan = off")
    try:
        for since, wanted in (
            (now - timedelta(hours=24), queries.RunFilter()),
            (now - timedelta(hours=1), queries.RunFilter(states=[StateType.FAILED])),
            (now - timedelta(days=7), queries.RunFilter(deployment_id=filled.deployment_ids[0])),
        ):
            await queries.histogram(conn, wanted, since, now, 48)
        await queries.deployment_summaries(conn, filled.deployment_ids)
        await queries.pool_load(conn)
        assert_indexed(explain.take(), explain.small)
    finally:
        await explain.conn.execute("RESET enable_seqscan")
