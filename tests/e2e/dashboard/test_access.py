"""Signing in and out, and what a key's scopes allow: a bad key is refused with a message; a read
key sees every page without its change buttons, and the same changes made with its session are
refused by the API; a change without the page's CSRF token is refused too."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from playwright.sync_api import expect

from baton._amqp import Properties
from baton_schemas.envelopes import DeadLetterHeaders

from .conftest import WAIT_MS, Dashboard, amqp_publish, unique


def test_sign_in_refuses_a_bad_key_and_sign_out_ends_the_session(dash: Dashboard) -> None:
    page = dash.page
    page.goto(f"{dash.base}/")
    page.wait_for_url("**/ui/login")  # no session: the app sends the browser to sign in

    page.fill("input[name=key]", "bt_not-a-key-of-this-server")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("unknown or revoked API key")
    assert page.context.cookies() == []

    events_only = dash.key("events")
    page.fill("input[name=key]", events_only)
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("the dashboard needs read")

    dash.sign_in(dash.key("read"))
    assert page.inner_text("#who").endswith("read")
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's scripts never see the key
    dash.shot("signed-in")

    page.click("#signout button")
    page.wait_for_url("**/ui/login")
    assert page.context.cookies() == []
    assert dash.fetch("GET", "/api/ui/session")["status"] == 401
    page.goto(f"{dash.base}/#/runs")
    page.wait_for_url("**/ui/login")


# every change button of the dashboard, by the page that shows it
BUTTONS = {
    "run": ["#cancel"],
    "failed": ["#retry"],
    "deployment": ["#run-form", "#pause-deployment"],
    "deployments": ["button.pause", "a.button"],
    "automations": ["button.toggle"],
    "automation": ["#toggle"],
    "dead-letters": ["button"],
}


def _park_a_letter(dash: Dashboard) -> str:
    message_id = str(uuid.uuid4())
    headers = {
        DeadLetterHeaders.REASON: "database unavailable",
        DeadLetterHeaders.ORIGINAL_EXCHANGE: "baton.events",
        DeadLetterHeaders.ORIGINAL_ROUTING_KEY: "ui.parked",
        DeadLetterHeaders.ORIGINAL_QUEUE: "baton.event-store",
    }
    body = orjson.dumps({"event": "ui.parked", "resource": {"baton.resource.id": message_id}})
    properties = Properties(content_type="application/json", message_id=message_id, headers=headers)
    amqp_publish(dash.server, "baton.dead", "", body, properties)
    return message_id


def _buttons(dash: Dashboard, routes: dict[str, tuple[str, str, str]]) -> dict[str, list[int]]:
    """How many of each page's change buttons the signed-in key sees."""
    seen = {}
    for name, (route, ready, scope) in routes.items():
        page = dash.open(route, ready)
        seen[name] = [page.locator(f"{scope} {selector}").count() for selector in BUTTONS[name]]
    return seen


def test_a_read_key_sees_every_page_and_can_change_nothing(dash: Dashboard) -> None:
    idle = dash.pool()
    waiting = dash.setup.deployment("flows.py:sleepy", work_pool_name=idle)
    fails = dash.setup.deployment("flows.py:fails")
    dash.setup.start_worker()
    scheduled = dash.setup.api.run(waiting)
    failed = dash.setup.api.run(fails)
    dash.setup.api.wait_state(failed["id"], "FAILED")
    automation = unique("ui-access")
    dash.automation(automation, f"{automation}.never", waiting)
    letter = _park_a_letter(dash)

    routes = {
        "run": (f"runs/{scheduled['id']}", "#timeline [data-state=SCHEDULED]", "#run-actions"),
        "failed": (f"runs/{failed['id']}", "#timeline [data-state=FAILED]", "#run-actions"),
        "deployment": (f"deployments/{waiting['id']}", "#deployment-status", "main"),
        "deployments": (
            "deployments",
            f"tr[data-deployment='{waiting['id']}']",
            f"tr[data-deployment='{waiting['id']}']",
        ),
        "automations": (
            "automations",
            f"tr[data-automation='{automation}']",
            f"tr[data-automation='{automation}']",
        ),
        "automation": (f"automations/{automation}", "#automation-status", "main"),
        "dead-letters": ("dead-letters", f"tr[data-letter='{letter}']", f"tr[data-letter='{letter}']"),
    }
    dash.sign_in(dash.key("admin"))
    as_admin = _buttons(dash, routes)
    assert as_admin == {
        "run": [1],
        "failed": [1],
        "deployment": [1, 1],
        "deployments": [1, 1],
        "automations": [1],
        "automation": [1],
        "dead-letters": [2],  # replay and drop
    }

    dash.page.click("#signout button")
    dash.page.wait_for_url("**/ui/login")
    dash.sign_in(dash.key("read"))
    as_reader = _buttons(dash, routes)
    assert all(n == 0 for counts in as_reader.values() for n in counts), as_reader
    dash.open(f"runs/{scheduled['id']}", "#run-state")
    assert "sleepy" in dash.page.inner_text("h1")  # the pages themselves are there
    dash.shot("read-key-run-page")

    # the same calls, with the read key's session and its CSRF token: refused by the API
    changes: list[tuple[str, Any]] = [
        (f"/api/flow_runs/{scheduled['id']}/cancel", {}),
        (f"/api/flow_runs/{failed['id']}/retry", {}),
        (f"/api/deployments/{waiting['id']}/runs", {"parameters": {}}),
        (f"/api/deployments/{waiting['id']}/pause", {}),
        (f"/api/automations/{automation}/pause", {}),
        ("/api/ui/dead_letters/replay", {"message_ids": [letter]}),
        ("/api/ui/dead_letters/drop", {"message_ids": [letter]}),
    ]
    for path, body in changes:
        answer = dash.fetch("POST", path, body)
        assert answer["status"] == 403, (path, answer)
        assert "scope" in answer["body"], (path, answer)
    assert dash.setup.api.state_of(scheduled["id"])["type"] == "SCHEDULED"
    assert dash.setup.api.read_run(failed["id"])["run_count"] == 1
    assert dash.setup.api.get(f"/deployments/{waiting['id']}")["paused"] is False
    assert dash.setup.api.get(f"/automations/{automation}")["enabled"] is True
    assert len(dash.setup.api.get("/flow_runs", deployment_id=waiting["id"])["items"]) == 1
    letters = dash.setup.api.get("/ui/dead_letters", limit=1000)
    assert letter in {d["message_id"] for d in letters}
    dash.setup.api.post("/ui/dead_letters/drop", {"message_ids": [letter]})


def test_a_change_without_the_pages_csrf_token_is_refused(dash: Dashboard) -> None:
    idle = dash.pool()
    waiting = dash.setup.deployment("flows.py:sleepy", work_pool_name=idle)
    scheduled = dash.setup.api.run(waiting)
    dash.sign_in(dash.key("admin"))

    refused = dash.fetch("POST", f"/api/flow_runs/{scheduled['id']}/cancel", csrf=False)
    assert refused["status"] == 403
    assert "x-csrf-token" in refused["body"]
    forged = dash.fetch(
        "POST", f"/api/flow_runs/{scheduled['id']}/cancel", csrf=False, headers={"x-csrf-token": "0" * 64}
    )
    assert forged["status"] == 403
    assert dash.setup.api.state_of(scheduled["id"])["type"] == "SCHEDULED"

    page = dash.open(f"runs/{scheduled['id']}", "#run-state [data-state=SCHEDULED]")
    page.click("#cancel")  # the page's own call carries its token
    page.wait_for_selector("#run-state [data-state=CANCELLED]", timeout=WAIT_MS)
    assert dash.setup.api.state_of(scheduled["id"])["type"] == "CANCELLED"
