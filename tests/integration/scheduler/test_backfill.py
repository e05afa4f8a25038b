"""Backfill over the API: slots of a past range, idempotent, capped, with a dry run."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from baton_schemas import utcnow
from baton_server.context import ServerContext

from .helpers import deploy, runs_of


async def test_backfill_twice_makes_nothing_the_second_time(
    api: httpx.AsyncClient, ctx: ServerContext, api_keys: dict[str, str]
) -> None:
    deployment = await deploy(
        ctx,
        [{"schedule": {"kind": "cron", "cron": "0 * * * *"}, "slug": "hourly", "parameters": {"x": 1}}],
    )
    end = utcnow().replace(minute=30, second=0, microsecond=0)
    body = {"start": (end - timedelta(hours=5)).isoformat(), "end": end.isoformat()}
    url = f"/api/deployments/{deployment}/backfill"

    dry = await api.post(url, json={**body, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert len(dry.json()["slots"]) == 5 and dry.json()["created"] == 0
    assert not [r for r in await runs_of(ctx, deployment) if r["schedule_slot"] < end]

    first = await api.post(url, json=body)
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["existing"]) == (5, 0)
    again = await api.post(url, json=body)
    assert (again.json()["created"], again.json()["existing"]) == (0, 5)
    assert {s["flow_run_id"] for s in again.json()["slots"]} == {
        s["flow_run_id"] for s in first.json()["slots"]
    }

    past = [r for r in await runs_of(ctx, deployment) if r["schedule_slot"] < end]
    assert len(past) == 5
    assert all(not r["auto_scheduled"] and r["parameters"] == {"x": 1} for r in past)
    assert {r["schedule_slot"].minute for r in past} == {0}
    assert all(r["next_scheduled_time"] > r["schedule_slot"] for r in past)  # due now, not Late at once


async def test_backfill_refusals(
    api: httpx.AsyncClient, ctx: ServerContext, api_keys: dict[str, str]
) -> None:
    deployment = await deploy(
        ctx, [{"schedule": {"kind": "interval", "interval_seconds": 1}, "slug": "fast"}]
    )
    url = f"/api/deployments/{deployment}/backfill"
    end = utcnow()
    too_many = await api.post(
        url, json={"start": (end - timedelta(hours=2)).isoformat(), "end": end.isoformat()}
    )
    assert too_many.status_code == 422 and "more than 1000 slots" in too_many.json()["detail"]
    unknown = await api.post(
        url,
        json={
            "start": (end - timedelta(seconds=5)).isoformat(),
            "end": end.isoformat(),
            "schedules": ["nope"],
        },
    )
    assert unknown.status_code == 422 and "'nope'" in unknown.json()["detail"]
    backwards = await api.post(url, json={"start": end.isoformat(), "end": (end - timedelta(1)).isoformat()})
    assert backwards.status_code == 422
    missing = await api.post(
        f"/api/deployments/{uuid.uuid4()}/backfill",
        json={"start": (end - timedelta(seconds=5)).isoformat(), "end": end.isoformat()},
    )
    assert missing.status_code == 404
    reader = await api.post(
        url,
        json={"start": (end - timedelta(seconds=5)).isoformat(), "end": end.isoformat()},
        headers={"Authorization": f"Bearer {api_keys['read']}"},
    )
    assert reader.status_code == 403
    assert not [r for r in await runs_of(ctx, deployment) if not r["auto_scheduled"]]
