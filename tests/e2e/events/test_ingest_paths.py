"""Every way in: raw AMQP, HTTP, CloudEvents in both modes over both bindings, a webhook and
`emit_event` from a flow run. Each event is stored once, read back with filters, and seen on a
live stream, through the real `baton server start`."""

from __future__ import annotations

import sys
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

from baton._amqp import Connection, Properties
from baton_server.events.signatures import github_signature

from ...support.processes import BATON
from ...support.waiting import eventually
from ..conftest import LiveServer
from ..sdk.conftest import run_process, write_flow
from .conftest import live_stream, stored, until

WEBHOOK_TEMPLATE = """{
  "event": "{{ headers['x-kind'] }}.pushed",
  "resource": {"baton.resource.id": "repo.{{ body.repository.name }}", "team": "{{ query.team }}"},
  "payload": {"commits": {{ body.commits | length }}, "ref": {{ body.ref | tojson }}}
}"""

EMITTING_FLOW = """
    from baton import emit_event, flow, task

    @task
    def load() -> int:
        emit_event("$prefix.loaded", resource={"baton.resource.id": "etl.daily.load"})
        return 1200

    @flow(name="$flow")
    def etl() -> None:
        rows = load()
        emit_event("$prefix.done", resource="etl.daily", payload={"rows": rows})

    if __name__ == "__main__":
        etl()
"""


async def test_every_way_in_is_stored_once_filterable_and_streamed(
    live_server: LiveServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    p = f"in{uuid.uuid4().hex[:8]}"  # this test's names: {p}.raw, {p}.http, ...
    async with live_stream(http, name=f"{p}.*") as stream:
        # 1. straight to RabbitMQ, and CloudEvents over AMQP (binary and structured)
        amqp = await Connection.open(live_server.backends.broker_url, name="e2e-publisher")
        try:
            channel = await amqp.channel(confirms=True)
            raw = {
                "event": f"{p}.raw",
                "resource": {"baton.resource.id": "shop.order.42"},
                "payload": {"total": 18.5},
            }
            ce_headers = {
                "cloudEvents:specversion": "1.0",
                "cloudEvents:type": f"{p}.ce-amqp-binary",
                "cloudEvents:source": "/shop",
                "cloudEvents:id": f"{p}-1",
            }
            structured = {
                "specversion": "1.0",
                "type": f"{p}.ce-amqp-structured",
                "source": "/shop",
                "id": f"{p}-2",
                "data": {"n": 2},
            }
            for key, body, props in (
                (f"{p}.raw", orjson.dumps(raw), Properties(content_type="application/json")),
                (
                    f"{p}.ce-amqp-binary",
                    b'{"n": 1}',
                    Properties(content_type="application/json", headers=ce_headers),
                ),
                (
                    f"{p}.ce-amqp-structured",
                    orjson.dumps(structured),
                    Properties(content_type="application/cloudevents+json"),
                ),
            ):
                confirm = channel.publish("baton.events", key, body, props, mandatory=True)
                assert confirm is not None
                await confirm
        finally:
            await amqp.close()

        # 2. HTTP, and CloudEvents over HTTP (binary and structured)
        response = await http.post(
            "/events", json={"event": f"{p}.http", "resource": {"baton.resource.id": "shop.order.42"}}
        )
        assert response.status_code == 202, response.text
        binary = {
            "ce-specversion": "1.0",
            "ce-type": f"{p}.ce-http-binary",
            "ce-source": "/shop",
            "ce-id": f"{p}-3",
            "ce-subject": "order/42",
            "content-type": "application/json",
        }
        assert (await http.post("/events", headers=binary, content=b'{"total": 18.5}')).status_code == 202
        structured_http = {
            "specversion": "1.0",
            "type": f"{p}.ce-http-structured",
            "source": "/shop",
            "id": f"{p}-4",
        }
        response = await http.post(
            "/events",
            content=orjson.dumps(structured_http),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert response.status_code == 202, response.text

        # 3. a webhook, made with the CLI, signed like GitHub
        template = tmp_path / "hook.j2"
        template.write_text(
            WEBHOOK_TEMPLATE.replace("{{ headers['x-kind'] }}", p + "{{ '' }}").replace(
                f"{p}{{{{ '' }}}}.pushed", f"{p}.webhook"
            )
        )
        env = live_server.client_env(GH_SECRET="a-long-enough-secret")
        created = await run_process(
            [
                BATON,
                "webhook",
                "create",
                f"gh-{p}",
                "--template",
                str(template),
                "--hmac-secret-env",
                "GH_SECRET",
            ],
            env,
            tmp_path,
        )
        url = created.check().stdout.split("POST ", 1)[1].split()[0]
        body = orjson.dumps({"repository": {"name": "baton"}, "commits": [1, 2], "ref": "refs/heads/main"})
        signed = {
            "X-Hub-Signature-256": github_signature("a-long-enough-secret", body),
            "x-kind": "github",
            "content-type": "application/json",
        }
        async with httpx.AsyncClient() as anonymous:  # no API key: the signature is the check
            response = await anonymous.post(url, params={"team": "data"}, content=body, headers=signed)
            assert response.status_code == 202, response.text

        # 4. emit_event from a flow run (and from one of its tasks)
        flow_name = f"etl-{p}"
        path = write_flow(tmp_path, EMITTING_FLOW, prefix=p, flow=flow_name)
        run_env = live_server.client_env(BATON_HOME=str(tmp_path / "home"))
        (await run_process([sys.executable, str(path)], run_env, tmp_path)).check()

        expected = [
            "raw",
            "ce-amqp-binary",
            "ce-amqp-structured",
            "http",
            "ce-http-binary",
            "ce-http-structured",
            "webhook",
            "loaded",
            "done",
        ]

        async def all_stored() -> list[dict[str, Any]] | None:
            items = await stored(http, name=f"{p}.*")
            return items if len(items) >= len(expected) else None

        items = await until(all_stored, timeout=30, what="every event stored")
        for name in expected:
            await eventually(partial(stream.saw, f"{p}.{name}"), timeout=15, what=f"{name} on the stream")

    names = sorted(e["event"] for e in items)
    assert names == sorted(f"{p}.{n}" for n in expected)  # each once
    assert sorted(stream.names()) == names  # and streamed once each
    by_name = {e["event"].removeprefix(f"{p}."): e for e in items}
    assert by_name["raw"]["payload"] == {"total": 18.5}
    assert by_name["ce-http-binary"]["resource"]["baton.resource.id"] == "/shop/order/42"
    assert by_name["ce-amqp-structured"]["payload"] == {"n": 2}
    assert by_name["webhook"]["resource"] == {"baton.resource.id": "repo.baton", "team": "data"}
    assert by_name["webhook"]["payload"] == {"commits": 2, "ref": "refs/heads/main"}

    # filters: on the resource, on related resources
    shop = await stored(http, name=f"{p}.*", resource="baton.resource.id=shop.order.*")
    assert sorted(e["event"] for e in shop) == [f"{p}.http", f"{p}.raw"]
    [run] = (await http.get("/flow_runs", params={"flow_name": flow_name})).json()["items"]
    from_run = await stored(http, name=f"{p}.*", related=f"baton.flow-run.{run['id']}")
    assert sorted(e["event"] for e in from_run) == [f"{p}.done", f"{p}.loaded"]
    done = by_name["done"]
    roles = {r["baton.resource.role"]: r["baton.resource.id"] for r in done["related"]}
    assert roles == {"flow-run": f"baton.flow-run.{run['id']}", "flow": f"baton.flow.{run['flow_id']}"}
    loaded = by_name["loaded"]
    assert {r["baton.resource.role"] for r in loaded["related"]} == {"task-run", "flow-run", "flow"}
    # the flow's events follow each other: the first its run's Running state, the next the first
    running = await stored(
        http, name="baton.flow-run.Running", resource=f"baton.resource.id=baton.flow-run.{run['id']}"
    )
    assert loaded["follows"] == running[0]["id"]
    assert done["follows"] == loaded["id"]
