"""Task-run state batches as the tracker stores them: history, the task run, and what is sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from baton_schemas.envelopes import StateChange, TaskRunStateReport
from baton_schemas.runs import TaskInput, TaskRunInfo
from baton_schemas.states import Completed, Failed, Pending, Running, State, StateType
from baton_server.context import ServerContext
from baton_server.db.types import Connection
from baton_server.tracker.ingest import store_task_run_states

from ..support.runs import new_run


def _reports(info: TaskRunInfo, *states: State, first_version: int = 1) -> list[TaskRunStateReport]:
    return [
        TaskRunStateReport(task_run=info, state=state, version=version)
        for version, state in enumerate(states, start=first_version)
    ]


async def _task_run(conn: Connection, task_run_id: uuid.UUID) -> dict[str, object]:
    row = await conn.fetchrow("SELECT * FROM task_runs WHERE id = $1", task_run_id)
    assert row is not None
    return dict(row)


async def test_a_batch_writes_history_the_task_run_and_one_message_per_state(
    ctx: ServerContext, conn: Connection
) -> None:
    run = await new_run(ctx, flow="Ingest Shape")
    upstream = uuid.uuid4()
    info = TaskRunInfo(
        id=uuid.uuid4(),
        flow_run_id=run.id,
        name="load-0",
        task_key="load",
        tags=["io", "db"],
        task_inputs={"rows": [TaskInput(id=upstream)]},
        cache_key="k1",
    )
    started = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    states = [
        Pending().model_copy(update={"timestamp": started}),
        Running().model_copy(update={"timestamp": started + timedelta(seconds=1)}),
        State(type=StateType.COMPLETED, data={"ref": "x"}).model_copy(
            update={"timestamp": started + timedelta(seconds=3)}
        ),
    ]
    rows = await store_task_run_states(conn, _reports(info, *states))

    # one message per state, in the order reported, each the StateChange of its state
    sent = [StateChange.model_validate_json(r.message.body) for r in rows]
    assert [c.id for c in sent] == [s.id for s in states]
    assert [c.state_version for c in sent] == [1, 2, 3]
    assert [r.message.routing_key for r in rows] == [
        "task-run.pending.ingest-shape",
        "task-run.running.ingest-shape",
        "task-run.completed.ingest-shape",
    ]
    assert rows == sorted(rows, key=lambda r: r.id)
    stored = await conn.fetch(
        "SELECT id, body FROM outbox WHERE id = ANY($1::bigint[])", [r.id for r in rows]
    )
    assert {r["id"]: bytes(r["body"]) for r in stored} == {r.id: r.message.body for r in rows}

    task_run = await _task_run(conn, info.id)
    assert task_run["state_type"] == "COMPLETED" and task_run["state_version"] == 3
    assert task_run["state"] == orjson.loads(states[2].model_dump_json())
    assert task_run["tags"] == ["io", "db"] and task_run["cache_key"] == "k1"
    edge = {"input_type": "task_run", "id": str(upstream), "name": None}
    assert task_run["task_inputs"] == {"rows": [edge]}
    assert task_run["run_count"] == 1
    assert task_run["start_time"] == states[1].timestamp and task_run["end_time"] == states[2].timestamp
    assert task_run["created"] == started
    history = await conn.fetch(
        "SELECT version, name, state FROM states WHERE task_run_id = $1 ORDER BY version", info.id
    )
    assert [(h["version"], h["name"]) for h in history] == [(1, "Pending"), (2, "Running"), (3, "Completed")]
    assert history[2]["state"]["data"] == {"ref": "x"}


async def test_later_batches_redeliveries_and_reordering(ctx: ServerContext, conn: Connection) -> None:
    run = await new_run(ctx, flow="Ingest Order")
    info = TaskRunInfo(id=uuid.uuid4(), flow_run_id=run.id, name="t-0", task_key="t")
    first = _reports(info, Pending(), Running(), Failed("boom"))
    retry = _reports(info, Running(), Completed(), first_version=4)

    assert len(await store_task_run_states(conn, first)) == 3
    # the retry's batch arrives with its last report first; a stale copy of batch one rides along
    rows = await store_task_run_states(conn, [retry[1], first[2], retry[0]])
    assert [StateChange.model_validate_json(r.message.body).state_version for r in rows] == [5, 4]
    task_run = await _task_run(conn, info.id)
    assert (task_run["state_type"], task_run["state_version"], task_run["run_count"]) == ("COMPLETED", 5, 2)

    # the whole story again: nothing new stored, nothing sent, nothing counted twice
    assert await store_task_run_states(conn, first + retry) == []
    again = await _task_run(conn, info.id)
    assert (again["state_version"], again["run_count"]) == (5, 2)
    assert await conn.fetchval("SELECT count(*) FROM states WHERE task_run_id = $1", info.id) == 5

    # an older report alone never moves the task run back
    await store_task_run_states(conn, _reports(info, Running(), first_version=3))
    assert (await _task_run(conn, info.id))["state_type"] == "COMPLETED"


async def test_states_of_unknown_flow_runs_are_dropped_and_the_rest_stored(
    ctx: ServerContext, conn: Connection
) -> None:
    run = await new_run(ctx, flow="Ingest Mixed")
    known = TaskRunInfo(id=uuid.uuid4(), flow_run_id=run.id, name="a", task_key="a")
    orphan = TaskRunInfo(id=uuid.uuid4(), flow_run_id=uuid.uuid4(), name="b", task_key="b")
    mixed = _reports(orphan, Pending()) + _reports(known, Pending(), Running())
    rows = await store_task_run_states(conn, mixed)
    assert len(rows) == 2
    stored = "SELECT count(*) FROM task_runs WHERE id = ANY($1::uuid[])"
    assert await conn.fetchval(stored, [known.id, orphan.id]) == 1
