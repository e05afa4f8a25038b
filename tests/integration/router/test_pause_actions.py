"""The router's pause-run, suspend-run and resume-run actions against the run's database and
vhost: a run that has not started is held and resumed; what cannot be done is a failed firing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from baton._amqp import Channel
from baton_server.context import ServerContext
from baton_server.router.service import RouterService

from ...support.waiting import eventually
from .conftest import create_automation, firings, publish


async def _automation(api: httpx.AsyncClient, ctx: ServerContext, event: str, action: dict[str, Any]) -> str:
    body = {"name": f"auto-{uuid.uuid4().hex[:8]}", "trigger": {"expect": [event]}, "actions": [action]}
    return str((await create_automation(api, ctx, body))["id"])


async def _fired(ctx: ServerContext, channel: Channel, automation_id: str, event: str, run_id: str) -> Any:
    await publish(
        channel, {"event": event, "resource": {"baton.resource.id": "ops.1"}, "payload": {"run": run_id}}
    )
    [firing] = await eventually(lambda: firings(ctx, automation_id), what=f"the firing on {event}")
    return firing["actions"][0]


async def _state(ctx: ServerContext, run_id: str) -> tuple[str, str, Any]:
    row = await ctx.pool.fetchrow(
        """SELECT state_type, state_name, dispatched_version IS NOT DISTINCT FROM state_version AS dispatched
           FROM flow_runs WHERE id = $1""",
        uuid.UUID(run_id),
    )
    assert row is not None
    return row["state_type"], row["state_name"], row["dispatched"]


async def test_pause_run_holds_a_waiting_run_and_resume_run_schedules_it_again(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    response = await api.post(
        f"/api/deployments/{deployment['id']}/runs",
        json={"parameters": {"order_id": "7"}, "scheduled_time": "2999-01-01T00:00:00Z"},
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    target = "{{ event.payload.run }}"
    suffix = uuid.uuid4().hex[:8]
    hold = await _automation(api, ctx, f"hold.{suffix}", {"type": "pause-run", "flow_run": target})
    bad = await _automation(
        api, ctx, f"nudge.{suffix}", {"type": "resume-run", "flow_run": target, "run_input": {"ok": True}}
    )
    resume = await _automation(api, ctx, f"release.{suffix}", {"type": "resume-run", "flow_run": target})

    held = await _fired(ctx, channel, hold, f"hold.{suffix}", run_id)
    assert held["ok"] is True, held
    assert await _state(ctx, run_id) == ("PAUSED", "Paused", False)
    history = await ctx.pool.fetchval(
        "SELECT state FROM states WHERE flow_run_id = $1 ORDER BY version DESC LIMIT 1", uuid.UUID(run_id)
    )
    assert history["message"] == f"paused by automation {(await _name(ctx, hold))!r}"
    assert history["data"]["pause"]["reschedule"] is True  # nothing waits: resumed, it is dispatched

    refused = await _fired(ctx, channel, bad, f"nudge.{suffix}", run_id)
    assert refused["ok"] is False and "waits for no input" in refused["detail"]
    assert (await _state(ctx, run_id))[0] == "PAUSED"

    resumed = await _fired(ctx, channel, resume, f"release.{suffix}", run_id)
    assert resumed["ok"] is True, resumed
    assert await _state(ctx, run_id) == ("SCHEDULED", "Resuming", True)  # due now, and dispatched

    # again: the run is not paused now, which the firing says
    again = await _automation(api, ctx, f"release2.{suffix}", {"type": "resume-run", "flow_run": target})
    twice = await _fired(ctx, channel, again, f"release2.{suffix}", run_id)
    assert twice["ok"] is False and "is not paused" in twice["detail"]


async def test_suspend_run_holds_a_waiting_run_and_pause_run_refuses_a_running_one(
    api: httpx.AsyncClient,
    ctx: ServerContext,
    router: RouterService,
    channel: Channel,
    deployment: dict[str, Any],
) -> None:
    runs = []
    for when in ("2999-01-01T00:00:00Z", None):  # one waits; one is due, and started here
        response = await api.post(
            f"/api/deployments/{deployment['id']}/runs",
            json={"parameters": {"order_id": "8"}, "scheduled_time": when},
        )
        assert response.status_code == 201, response.text
        runs.append(response.json()["id"])
    waiting, running = runs
    started = await api.post(f"/api/flow_runs/{running}/set_state", json={"state": {"type": "RUNNING"}})
    assert started.status_code == 200 and started.json()["verdict"] == "ACCEPT", started.text
    suffix = uuid.uuid4().hex[:8]
    target = "{{ event.payload.run }}"
    suspend = await _automation(
        api, ctx, f"suspend.{suffix}", {"type": "suspend-run", "flow_run": target, "timeout": "10m"}
    )
    pause = await _automation(api, ctx, f"pause.{suffix}", {"type": "pause-run", "flow_run": target})

    suspended = await _fired(ctx, channel, suspend, f"suspend.{suffix}", waiting)
    assert suspended["ok"] is True, suspended
    assert (await _state(ctx, waiting))[:2] == ("PAUSED", "Suspended")

    refused = await _fired(ctx, channel, pause, f"pause.{suffix}", running)
    assert refused["ok"] is False
    assert "is running: it cannot be paused from outside (a running flow pauses itself)" in refused["detail"]
    assert (await _state(ctx, running))[0] == "RUNNING"

    # an ad hoc run: no worker could start it again, so it is not suspended
    made = await api.post("/api/flow_runs", json={"flow_name": f"ad-hoc-{suffix}"})
    assert made.status_code == 201, made.text
    ad_hoc = made.json()["id"]
    started = await api.post(f"/api/flow_runs/{ad_hoc}/set_state", json={"state": {"type": "RUNNING"}})
    assert started.json()["verdict"] == "ACCEPT", started.text
    other = await _automation(api, ctx, f"suspend2.{suffix}", {"type": "suspend-run", "flow_run": target})
    kept = await _fired(ctx, channel, other, f"suspend2.{suffix}", ad_hoc)
    assert kept["ok"] is False and "is not a deployment's: no worker could start it again" in kept["detail"]
    assert (await _state(ctx, ad_hoc))[0] == "RUNNING"


async def _name(ctx: ServerContext, automation_id: str) -> str:
    return str(
        await ctx.pool.fetchval("SELECT name FROM automations WHERE id = $1", uuid.UUID(automation_id))
    )
