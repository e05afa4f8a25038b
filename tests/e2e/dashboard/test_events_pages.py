"""Events and automations in the browser: events published over raw AMQP and over HTTP arrive
live in the feed; an event's page shows its resource, related resources, payload and the
automation it fired; the firing arrives live on the automation's page, with the run it made
(run by a worker); disable and enable an automation."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from playwright.sync_api import expect

from baton._amqp import Properties
from baton._deploy.schema import parameter_schema

from ..worker.conftest import wait_until
from .conftest import WAIT_MS, Dashboard, amqp_publish, unique
from .test_deployments_pages import typed


def _firings(dash: Dashboard, name: str) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = dash.setup.api.get(f"/automations/{name}/firings")["items"]
    return items if items and all(f["ok"] is not None for f in items) else None


def test_an_event_arrives_live_and_its_page_shows_what_it_fired(dash: Dashboard) -> None:
    prefix = unique("shop").replace("-", "")
    deployment = dash.setup.deployment("flows.py:typed", parameter_schema=parameter_schema(typed))
    name = f"{prefix}-placed"
    dash.automation(name, f"{prefix}.order.placed", deployment, count=2, label="{{ event.payload.item }}")
    dash.setup.start_worker()
    dash.sign_in(dash.key("read"))

    feed = dash.open(f"events?name={prefix}.*", "#event-filters")
    feed.wait_for_selector("[data-live=on]")
    expect(feed.locator("#events")).to_contain_text("No events match yet")
    automation = dash.context.new_page()  # a second tab: the automation's page, live too
    automation.goto(f"{dash.base}/#/automations/{name}")
    automation.wait_for_selector("#firings")
    automation.wait_for_selector("[data-live=on]")
    expect(automation.locator("#firings")).to_contain_text("It has not fired yet.")

    placed: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": f"{prefix}.order.placed",
        "resource": {"baton.resource.id": "shop.order.7", "baton.resource.name": "order 7"},
        "related": [
            {
                "baton.resource.id": f"baton.deployment.{deployment['id']}",
                "baton.resource.role": "deployment",
                "baton.resource.name": deployment["name"],
            }
        ],
        "payload": {"item": "zz", "total": 18.5},
    }
    amqp_publish(
        dash.server,
        "baton.events",
        placed["event"],
        orjson.dumps(placed),
        Properties(content_type="application/json", message_id=placed["id"]),
    )
    feed.wait_for_selector(f"tr[data-event='{placed['id']}']")
    shipped = dash.setup.api.post(
        "/events", {"event": f"{prefix}.order.shipped", "resource": {"baton.resource.id": "shop.order.7"}}
    )
    [shipped_id] = shipped["ids"]
    feed.wait_for_selector(f"tr[data-event='{shipped_id}']")
    assert feed.locator("#events tr").first.get_attribute("data-event") == shipped_id  # newest first
    dash.shot("events")

    # the firing arrives on the automation's page by itself, with the run it made
    automation.wait_for_selector("#firings [data-firing]", timeout=WAIT_MS)
    expect(automation.locator("#firings .outcome").first).to_have_text("ok", timeout=WAIT_MS)
    [firing] = wait_until(lambda: _firings(dash, name), what="the firing's outcome")
    [action] = firing["actions"]
    run_id = action["flow_run_id"]
    assert automation.locator(f"#firings a[href='#/runs/{run_id}']").count() == 1
    dash.setup.api.wait_state(run_id, "COMPLETED")
    assert dash.setup.api.read_run(run_id)["parameters"] == {"count": 2, "label": "zz"}
    dash.shot("automation", automation)
    automation.close()

    feed.click(f"tr[data-event='{placed['id']}'] a")
    page = feed
    page.wait_for_selector("#event-firings")
    main = page.inner_text("main")
    assert "order 7" in main and "shop.order.7" in main  # its resource
    related = page.locator("main table").first
    expect(related).to_contain_text("deployment")
    assert related.locator(f"a[href='#/deployments/{deployment['id']}']").count() == 1
    assert '"item": "zz"' in main and '"total": 18.5' in main  # its payload
    fired = page.locator(f"#event-firings [data-firing='{firing['id']}']")
    expect(fired).to_contain_text(name)
    expect(fired).to_contain_text("ok")
    dash.shot("event")

    fired.locator("a").first.click()  # on to the automation's page
    page.wait_for_selector(f"#firings [data-firing='{firing['id']}']")
    page.click(f"#firings a[href='#/runs/{run_id}']")  # and the run it made
    page.wait_for_selector("#run-state [data-state=COMPLETED]")
    expect(page.locator("#logs")).to_contain_text("typed 2 zz", timeout=WAIT_MS)


def test_disable_and_enable_an_automation(dash: Dashboard) -> None:
    deployment = dash.setup.deployment("flows.py:typed", parameter_schema=parameter_schema(typed))
    name = unique("ui-toggle")
    dash.automation(name, f"{name}.never", deployment, count=1)
    dash.sign_in(dash.key("read", "deploy"))

    page = dash.open(f"automations/{name}", "#automation-status")
    expect(page.locator("#automation-status")).to_have_text("enabled")
    page.click("#toggle")
    expect(page.locator("#automation-status")).to_have_text("disabled")
    assert dash.setup.api.get(f"/automations/{name}")["enabled"] is False

    page = dash.open("automations", f"tr[data-automation='{name}']")
    row = page.locator(f"tr[data-automation='{name}']")
    expect(row.locator("td.enabled")).to_have_text("disabled")
    dash.shot("automations")
    row.locator("button.toggle").click()
    expect(row.locator("td.enabled")).to_have_text("enabled")
    assert dash.setup.api.get(f"/automations/{name}")["enabled"] is True
