"""Changes take effect: pausing, resuming, changing and removing schedules remove the runs that
have not started and make new ones; runs that started are left alone.

Each test has a database and vhost of its own, so that only its own passes reconcile and fill:
the session's scheduler (other tests start one) once reconciled a change of this test's between
them, and the last step then found nothing waiting (seen once in CI, 8 Dec; passes concurrent
with another scheduler's are not what this test is about, and that case is open in the note).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Running
from baton_server.context import ServerContext
from baton_server.db.deployments import delete_deployment
from baton_server.scheduler.service import SchedulerService
from baton_server.settings import ServerSettings
from baton_server.tracker.transitions import propose_flow_run_state

from ...support.backends import Backends, separate_backends
from .helpers import deploy, runs_of

HOURLY = {"schedule": {"kind": "interval", "interval_seconds": 3600}}


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    with separate_backends(backends, "changes") as own:
        yield own


@pytest.fixture
async def ctx(own_backends: Backends, server_settings: ServerSettings) -> AsyncIterator[ServerContext]:
    settings = server_settings.model_copy(
        update={"database_url": own_backends.database_url, "broker_url": own_backends.broker_url}
    )
    context = await ServerContext.open(settings, name="baton-schedule-changes")
    try:
        yield context
    finally:
        await context.close()


async def _passes(ctx: ServerContext) -> None:
    for scheduler in (SchedulerService(ctx), SchedulerService(ctx)):
        await scheduler.run_pass()


async def _waiting(ctx: ServerContext, deployment: uuid.UUID) -> list[dict[str, Any]]:
    return [r for r in await runs_of(ctx, deployment) if r["state_type"] == "SCHEDULED"]


async def test_pause_resume_change_and_remove(ctx: ServerContext) -> None:
    flow = f"flow-{uuid.uuid4().hex[:8]}"
    deployment = await deploy(ctx, [HOURLY], flow_name=flow, parameters={"n": 1})
    await _passes(ctx)
    first = await runs_of(ctx, deployment)
    assert len(first) == 3
    started = first[0]["id"]
    async with ctx.pool.acquire() as conn:
        outcome = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=started, state=Running(), force=True)
        )
    ctx.outbox.sent_after_commit(outcome.outbox)

    async def redeploy(**fields: Any) -> None:
        async with ctx.pool.acquire() as conn:
            pool_name = await conn.fetchval(
                "SELECT work_pool_name FROM deployments WHERE id = $1", deployment
            )
        again = await deploy(ctx, fields.pop("schedules", [HOURLY]), pool=pool_name, flow_name=flow, **fields)
        assert again == deployment

    # paused: no run waits any more; the started one is untouched
    await redeploy(paused=True, parameters={"n": 1})
    await _passes(ctx)
    assert await _waiting(ctx, deployment) == []
    runs = await runs_of(ctx, deployment)
    assert [(r["id"], r["state_type"]) for r in runs] == [(started, "RUNNING")]

    # resumed: the horizon is made again (the started run keeps its slot)
    await redeploy(paused=False, parameters={"n": 1})
    await _passes(ctx)
    waiting = await _waiting(ctx, deployment)
    assert len(waiting) >= 2 and started not in {r["id"] for r in waiting}
    assert {r["parameters"]["n"] for r in waiting} == {1}

    # changed: the waiting runs are made again from the new parameters
    before = {r["id"] for r in waiting}
    await redeploy(parameters={"n": 2})
    await _passes(ctx)
    waiting = await _waiting(ctx, deployment)
    assert waiting and not before & {r["id"] for r in waiting}
    assert {r["parameters"]["n"] for r in waiting} == {2}

    # a schedule made inactive, then removed: nothing waits; the started run is still there
    await redeploy(schedules=[{**HOURLY, "active": False}], parameters={"n": 2})
    await _passes(ctx)
    assert await _waiting(ctx, deployment) == []
    await redeploy(schedules=[HOURLY], parameters={"n": 2})
    await _passes(ctx)
    assert await _waiting(ctx, deployment)
    await redeploy(schedules=[], parameters={"n": 2})
    await _passes(ctx)
    assert await _waiting(ctx, deployment) == []
    assert [(r["id"], r["state_type"]) for r in await runs_of(ctx, deployment)] == [(started, "RUNNING")]


async def test_deleting_a_deployment_removes_its_waiting_runs(ctx: ServerContext) -> None:
    deployment = await deploy(ctx, [HOURLY])
    await _passes(ctx)
    runs = await runs_of(ctx, deployment)
    assert len(runs) == 3
    async with ctx.pool.acquire() as conn:
        outcome = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=runs[0]["id"], state=Running(), force=True)
        )
        ctx.outbox.sent_after_commit(outcome.outbox)
        await delete_deployment(conn, deployment)
    await _passes(ctx)
    assert [(r["id"], r["state_type"]) for r in await runs_of(ctx, deployment)] == [
        (runs[0]["id"], "RUNNING")
    ]
    async with ctx.pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT count(*) FROM schedule_states WHERE deployment_id = $1", deployment
        )
