"""Task-run transitions are events only where turned on: everywhere by a setting, or for the
runs of a deployment that asks for them. A 1,000-task flow would otherwise make 3,000 events."""

from __future__ import annotations

import uuid

from baton_schemas.deployments import DeploymentCreate
from baton_schemas.envelopes import TaskRunStateReport
from baton_schemas.events import Event
from baton_schemas.pools import WorkPoolCreate
from baton_schemas.runs import FlowRunCreate, TaskRunInfo
from baton_schemas.states import Completed, Pending, Running
from baton_server.broker.outbox import OutboxRow
from baton_server.context import ServerContext
from baton_server.db.deployments import upsert_deployment
from baton_server.db.flow_runs import create_flow_run
from baton_server.db.pools import create_pool
from baton_server.db.types import Connection
from baton_server.tracker.ingest import store_task_run_states


def _reports(flow_run_id: uuid.UUID) -> list[TaskRunStateReport]:
    info = TaskRunInfo(
        id=uuid.uuid4(), flow_run_id=flow_run_id, name="load-0", task_key="load", dynamic_key="0", tags=["io"]
    )
    return [
        TaskRunStateReport(task_run=info, state=state, version=version)
        for version, state in enumerate((Pending(), Running(), Completed()), start=1)
    ]


def _events(rows: list[OutboxRow]) -> list[Event]:
    return [Event.model_validate_json(r.message.body) for r in rows if r.message.exchange == "baton.events"]


async def test_off_by_default(conn: Connection, ctx: ServerContext) -> None:
    run, _, _ = await create_flow_run(conn, FlowRunCreate(flow_name=f"quiet-{uuid.uuid4().hex[:6]}"))
    rows = await store_task_run_states(conn, _reports(run.id))
    assert len(rows) == 3 and _events(rows) == []


async def test_on_everywhere_they_chain_within_a_batch(conn: Connection) -> None:
    run, _, _ = await create_flow_run(conn, FlowRunCreate(flow_name=f"loud-{uuid.uuid4().hex[:6]}"))
    reports = _reports(run.id)
    rows = await store_task_run_states(conn, reports, events=True)
    events = _events(rows)
    assert [e.event for e in events] == [
        "baton.task-run.Pending",
        "baton.task-run.Running",
        "baton.task-run.Completed",
    ]
    assert [e.id for e in events] == [r.state.id for r in reports]
    assert [e.follows for e in events] == [None, reports[0].state.id, reports[1].state.id]
    roles = {r["baton.resource.role"]: r["baton.resource.id"] for r in events[0].related}
    assert roles["flow-run"] == f"baton.flow-run.{run.id}" and roles["tag"] == "baton.tag.io"
    again = await store_task_run_states(conn, reports, events=True)  # a redelivered batch
    assert again == []


async def test_on_for_a_deployment_that_asks(conn: Connection) -> None:
    tag = uuid.uuid4().hex[:6]
    await create_pool(conn, WorkPoolCreate(name=f"p-{tag}", type="process"))
    deployment, _ = await upsert_deployment(
        conn,
        DeploymentCreate(
            name="dev",
            flow_name=f"dep-{tag}",
            entrypoint="f.py:f",
            work_pool_name=f"p-{tag}",
            task_run_events=True,
        ),
    )
    run, _, _ = await create_flow_run(
        conn, FlowRunCreate(flow_name=f"dep-{tag}", deployment_id=deployment.id)
    )
    assert deployment.task_run_events
    assert len(_events(await store_task_run_states(conn, _reports(run.id)))) == 3
