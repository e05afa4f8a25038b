"""Automations the way a user makes them: `triggers:` in baton.yaml through `baton deploy`, and
`baton automation create -f`; events published over raw AMQP or made by a failing flow start
runs that a real worker runs with the templated parameters."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import LiveServer
from .conftest import Shop, in_every_index, publish, wait_for

ORDER_ID = "{{ event.resource['baton.resource.id'].split('.')[-1] }}"


def _automation(shop: Shop, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        shop.project.baton("automation", "inspect", name, "--json").ok().stdout
    )
    return found


def test_a_baton_yaml_trigger_runs_its_deployment_through_a_worker_on_an_amqp_event(
    shop: Shop, live_server: LiveServer
) -> None:
    project, suffix = shop.project, shop.project.suffix
    trigger = {
        "expect": ["order.created"],
        "match": {"baton.resource.id": f"shop-{suffix}.order.*"},
        "parameters": {"order_id": ORDER_ID, "total": "{{ event.payload.total }}"},
    }
    deployment = {
        "name": "on-order",
        "entrypoint": "flows/shop.py:process_order",
        "work_pool": {"name": project.pool},
        "triggers": [trigger],
    }
    project.write_config({"deployments": [deployment]})
    project.baton("deploy").ok()
    name = f"orders-{suffix}/on-order:trigger-0"
    listed = project.baton("automation", "ls").ok().stdout
    assert name in listed and "order.created" in listed and "run-deployment" in listed
    automation = _automation(shop, name)
    in_every_index(live_server, automation["revision"])
    shop.start_worker()

    publish(
        live_server,
        {"event": "order.created", "resource": {"baton.resource.id": f"elsewhere-{suffix}.order.1"}},
        {"event": "order.paid", "resource": {"baton.resource.id": f"shop-{suffix}.order.2"}},
        {
            "event": "order.created",
            "resource": {"baton.resource.id": f"shop-{suffix}.order.42"},
            "payload": {"total": 18.5},
        },
    )

    recorded = wait_for(lambda: shop.recorded("order-42"), what="the flow ran for order 42")
    assert recorded == {"order_id": "42", "total": 18.5}  # typed: a number stays a number
    [run] = shop.deployment_runs("orders", "on-order")
    assert run["parameters"] == {"order_id": "42", "total": 18.5}
    assert run["idempotency_key"].startswith(f"trigger:{automation['id']}:")
    wait_for(lambda: project.get(f"/flow_runs/{run['id']}")["state"]["type"] == "COMPLETED", what="Completed")
    firings = project.baton("automation", "firings", name).ok().stdout
    assert run["id"] in firings and "run-deployment ok" in firings

    # redeploying changes the trigger in place: same automation, new revision
    deployment["triggers"] = [{**trigger, "threshold": 2, "within": "1m"}]
    project.write_config({"deployments": [deployment]})
    project.baton("deploy").ok()
    changed = _automation(shop, name)
    assert changed["id"] == automation["id"] and changed["revision"] > automation["revision"]
    assert changed["trigger"]["threshold"] == 2 and changed["trigger"]["within"] == 60


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_when_a_flow_fails_an_automation_from_a_file_runs_another_deployment_and_calls_a_webhook(
    shop: Shop, live_server: LiveServer, hook: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    project, suffix = shop.project, shop.project.suffix
    url, received = hook
    pool = {"name": project.pool}
    project.write_config(
        {
            "deployments": [
                {"name": "nightly", "entrypoint": "flows/shop.py:etl", "work_pool": pool},
                {"name": "page", "entrypoint": "flows/shop.py:page", "work_pool": pool},
            ]
        }
    )
    project.baton("deploy").ok()
    name = f"etl-fails-{suffix}"
    run_page: dict[str, Any] = {
        "type": "run-deployment",
        "deployment": f"page-{suffix}/page",
        "parameters": {"what": "{{ flow_run.name }} failed"},
    }
    automation = {
        "name": name,
        "trigger": {
            "expect": ["baton.flow-run.Failed"],
            "match_related": {"baton.resource.role": "flow", "baton.resource.name": f"etl-{suffix}"},
        },
        "actions": [
            run_page,
            {"type": "call-webhook", "url": url, "body": '{"text": "{{ event.event }}"}'},
        ],
    }
    bad = {**automation, "actions": [{**run_page, "deployment": "no-such/page"}]}
    project.write("bad.yaml", json.dumps(bad))
    error = project.baton("automation", "create", "-f", "bad.yaml").failed()
    assert "actions.0.deployment" in error and "does not exist" in error, error
    project.write("automation.yaml", json.dumps(automation))
    created = project.baton("automation", "create", "-f", "automation.yaml").ok().stdout
    assert f"Created automation {name!r}" in created
    again = project.baton("automation", "create", "-f", "automation.yaml").failed()
    assert "exists" in again and "--update" in again
    in_every_index(live_server, _automation(shop, name)["revision"])
    shop.start_worker()

    project.baton("deployment", "run", f"etl-{suffix}/nightly").ok()
    [failed] = shop.deployment_runs("etl", "nightly")
    page = wait_for(lambda: shop.recorded("page"), timeout=45, what="the page flow ran")
    assert page == {"what": f"{failed['name']} failed"}
    assert project.get(f"/flow_runs/{failed['id']}")["state"]["type"] == "FAILED"
    [(headers, body)] = wait_for(lambda: received, what="the webhook called")
    assert json.loads(body) == {"text": "baton.flow-run.Failed"}
    assert headers["Idempotency-Key"].endswith(":1")  # the firing's key and the action's index

    def firing_done() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = json.loads(
            project.baton("automation", "firings", name, "--json").ok().stdout
        )
        return found if found and found[0]["ok"] is True else None

    [firing] = wait_for(firing_done, what="the firing with both actions done")
    assert [a["type"] for a in firing["actions"]] == ["run-deployment", "call-webhook"]
    [page_run] = shop.deployment_runs("page", "page")
    assert firing["actions"][0]["flow_run_id"] == page_run["id"]

    project.baton("automation", "pause", name).ok()
    assert "paused" in project.baton("automation", "ls").ok().stdout.split(name, 1)[1].splitlines()[0]
    assert "paused" in project.baton("automation", "inspect", name).ok().stdout
    project.baton("automation", "resume", name).ok()
    project.baton("automation", "delete", name, "--yes").ok()
    assert name not in project.baton("automation", "ls").ok().stdout
    assert "does not exist" in project.baton("automation", "inspect", name).failed()
