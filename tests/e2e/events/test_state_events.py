"""Every accepted transition is an event with its related resources and its `follows` chain;
pools, deployments, workers and webhooks emit lifecycle events; a reconnecting stream misses
nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from ...support.processes import BATON
from ...support.waiting import eventually
from ..conftest import LiveServer
from ..sdk.conftest import run_process
from .conftest import live_stream, stored, until


async def test_a_flow_runs_transitions_are_a_chain_of_events(http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    pool = f"pool-{tag}"
    assert (await http.post("/work_pools", json={"name": pool, "type": "process"})).status_code == 201
    parent = (await http.post("/flow_runs", json={"flow_name": f"parent-{tag}"})).json()
    run = (
        await http.post(
            "/flow_runs",
            json={
                "flow_name": f"states-{tag}",
                "tags": ["nightly"],
                "work_pool_name": pool,
                "work_queue_name": "default",
                "parent_flow_run_id": parent["id"],
            },
        )
    ).json()
    resource = f"baton.resource.id=baton.flow-run.{run['id']}"
    async with live_stream(http, name="baton.flow-run.*", resource=resource) as stream:
        for state in ("PENDING", "RUNNING", "COMPLETED"):
            response = await http.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": state}})
            assert response.json()["verdict"] == "ACCEPT", response.text
        await eventually(lambda: stream.saw("baton.flow-run.Completed"), what="the last transition streamed")

    async def four() -> list[dict[str, Any]] | None:
        items = await stored(http, resource=resource)
        return items if len(items) == 4 else None

    events = list(reversed(await until(four, what="four state events stored")))  # oldest first
    assert [e["event"] for e in events] == [
        "baton.flow-run.Scheduled",
        "baton.flow-run.Pending",
        "baton.flow-run.Running",
        "baton.flow-run.Completed",
    ]
    assert stream.names() == [e["event"] for e in events[1:]] or stream.names() == [
        e["event"] for e in events
    ]
    states = (await http.get(f"/flow_runs/{run['id']}/states")).json()
    assert [e["id"] for e in events] == [s["id"] for s in states]  # an event's id is its state's
    assert events[0]["follows"] is None
    assert [e["follows"] for e in events[1:]] == [e["id"] for e in events[:-1]]
    roles = {r["baton.resource.role"]: r for r in events[2]["related"]}
    assert roles["flow"]["baton.resource.id"] == f"baton.flow.{run['flow_id']}"
    assert roles["flow"]["baton.resource.name"] == f"states-{tag}"
    assert roles["work-pool"]["baton.resource.id"] == f"baton.work-pool.{pool}"
    assert roles["work-queue"]["baton.resource.id"] == f"baton.work-queue.{pool}.default"
    assert roles["tag"]["baton.resource.id"] == "baton.tag.nightly"
    assert roles["parent-flow-run"]["baton.resource.id"] == f"baton.flow-run.{parent['id']}"
    assert events[2]["resource"]["baton.state-type"] == "RUNNING"
    assert events[3]["payload"]["intended"] == {"from": "RUNNING", "to": "COMPLETED"}
    # the same run's events through a related filter: the parent's children
    children = await stored(http, name="baton.flow-run.*", related=f"baton.flow-run.{parent['id']}")
    assert len(children) == 4


async def test_pools_deployments_and_webhooks_emit_lifecycle_events(
    live_server: LiveServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    pool = f"life-{tag}"
    assert (await http.post("/work_pools", json={"name": pool, "type": "process"})).status_code == 201
    assert (await http.patch(f"/work_pools/{pool}", json={"paused": True})).status_code == 200
    assert (await http.patch(f"/work_pools/{pool}", json={"paused": False})).status_code == 200
    deployment = (
        await http.post(
            "/deployments",
            json={
                "name": "dev",
                "flow_name": f"life-{tag}",
                "entrypoint": "flow.py:main",
                "work_pool_name": pool,
            },
        )
    ).json()
    assert (await http.delete(f"/deployments/{deployment['id']}")).status_code == 204
    template = tmp_path / "t.j2"
    template.write_text('{"event": "x.y", "resource": {"baton.resource.id": "x"}}')
    env = live_server.client_env()
    (
        await run_process([BATON, "webhook", "create", f"life-{tag}", "-t", str(template)], env, tmp_path)
    ).check()
    (await run_process([BATON, "webhook", "delete", f"life-{tag}", "--yes"], env, tmp_path)).check()
    assert (await http.delete(f"/work_pools/{pool}")).status_code == 204

    async def lifecycle() -> list[str] | None:
        pools = await stored(
            http, name="baton.work-pool.*", resource=f"baton.resource.id=baton.work-pool.{pool}"
        )
        deployments = await stored(
            http, name="baton.deployment.*", resource=f"baton.resource.id=baton.deployment.{deployment['id']}"
        )
        hooks = await stored(http, name="baton.webhook.*", resource=f"baton.resource.name=life-{tag}")
        names = [e["event"] for e in reversed(pools + deployments + hooks)]
        return names if len(names) >= 8 else None

    names = await until(lifecycle, timeout=20, what="the lifecycle events")
    assert sorted(names) == sorted(
        [
            "baton.work-pool.created",
            "baton.work-pool.paused",
            "baton.work-pool.resumed",
            "baton.work-pool.deleted",
            "baton.deployment.created",
            "baton.deployment.deleted",
            "baton.webhook.created",
            "baton.webhook.deleted",
        ]
    )


async def test_a_reconnecting_stream_is_sent_what_it_missed(http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"re{tag}.*"

    async def emit(n: int) -> None:
        body = [{"event": f"re{tag}.e{n}-{i}", "resource": {"baton.resource.id": "x"}} for i in range(3)]
        assert (await http.post("/events", json=body)).status_code == 202

    async with live_stream(http, name=name) as first:
        await emit(1)
        await eventually(lambda: first.saw(f"re{tag}.e1-2"), what="the first batch streamed")
        last_id = first.ids[-1]
    await emit(2)  # while nobody listens

    async def stored_all() -> bool:
        return len(await stored(http, name=name)) == 6

    await eventually(stored_all, what="the second batch stored")
    async with live_stream(http, headers={"last-event-id": last_id}, name=name) as second:
        await emit(3)
        await eventually(lambda: second.saw(f"re{tag}.e3-2"), what="live events after the backfill")
    seen = set(second.names())
    assert {f"re{tag}.e2-{i}" for i in range(3)} <= seen  # what it missed
    assert len(second.names()) == len(seen)  # none twice
