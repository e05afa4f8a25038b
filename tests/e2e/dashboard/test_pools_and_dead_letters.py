"""Work pools and dead letters in the browser: a pool's queues with their limits, slots in use and
runs waiting, its workers online then offline; the dead letters parked in `baton.dead`, each
inspected, one replayed to where it came from (and stored there), one dropped."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from playwright.sync_api import expect

from baton._amqp import Properties
from baton_schemas.envelopes import DeadLetterHeaders

from ..worker.conftest import wait_until
from .conftest import WAIT_MS, Dashboard, amqp_publish


def test_pools_queues_and_workers(dash: Dashboard) -> None:
    pool = dash.setup.pool
    dash.setup.api.http.patch(f"/work_pools/{pool}", json={"concurrency_limit": 4}).raise_for_status()
    dash.setup.api.post(
        f"/work_pools/{pool}/queues", {"name": "urgent", "priority": 1, "concurrency_limit": 2}
    )
    sleepy = dash.setup.deployment("flows.py:sleepy", parameters={"seconds": 120})
    idle = dash.pool()
    waiting = dash.setup.deployment("flows.py:sleepy", work_pool_name=idle)
    worker = dash.setup.start_worker("--limit", "3")
    running = dash.setup.api.run(sleepy)
    dash.setup.api.wait_state(running["id"], "RUNNING")
    dash.setup.api.run(waiting)
    dash.setup.api.run(waiting)
    dash.sign_in(dash.key("read"))

    page = dash.open("work-pools", f"[data-pool='{pool}']")
    card = page.locator(f"[data-pool='{pool}']")
    expect(card).to_contain_text("slots in use: 1 of 4")
    default = card.locator("tr[data-queue=default]")
    expect(default.locator(".running")).to_have_text("1")
    urgent = card.locator("tr[data-queue=urgent]")
    expect(urgent).to_contain_text("2")  # its limit
    expect(urgent.locator(".running")).to_have_text("0")
    row = card.locator(f"tr[data-worker='{worker.name}']")
    expect(row.locator(".worker-status")).to_have_text("online")
    expect(row.locator("td").nth(2)).to_have_text("3")  # its slots
    idle_card = page.locator(f"[data-pool='{idle}']")
    expect(idle_card.locator("tr[data-queue=default] .waiting")).to_have_text("2")
    expect(idle_card).to_contain_text("No workers.")
    dash.shot("work-pools")

    dash.setup.stop_workers()  # killed: no more heartbeats

    def offline() -> bool:
        return not any(w["online"] for w in dash.setup.api.get(f"/work_pools/{pool}/workers"))

    wait_until(offline, timeout=30, what="the killed worker to count as offline")
    page.reload()
    expect(page.locator(f"[data-pool='{pool}'] tr[data-worker='{worker.name}'] .worker-status")).to_have_text(
        "offline", timeout=WAIT_MS
    )


def _park(dash: Dashboard, event: dict[str, Any]) -> str:
    """A good event parked while its cause lasted, as a consumer that gave up parks it."""
    headers = {
        DeadLetterHeaders.REASON: "database unavailable",
        DeadLetterHeaders.ORIGINAL_EXCHANGE: "baton.events",
        DeadLetterHeaders.ORIGINAL_ROUTING_KEY: event["event"],
        DeadLetterHeaders.ORIGINAL_QUEUE: "baton.event-store",
    }
    properties = Properties(content_type="application/json", message_id=event["id"], headers=headers)
    amqp_publish(dash.server, "baton.dead", "", orjson.dumps(event), properties)
    return str(event["id"])


def test_dead_letters_list_inspect_replay_and_drop(dash: Dashboard) -> None:
    tag = uuid.uuid4().hex[:8]
    poison = f"poison-{tag}"
    # what the event store cannot read, it parks with its reason
    amqp_publish(dash.server, "baton.events", f"ui.{tag}", b"{not json", Properties(message_id=poison))
    event = {"id": str(uuid.uuid4()), "event": f"ui.{tag}.replayed", "resource": {"baton.resource.id": tag}}
    stranded = _park(dash, event)
    dash.sign_in(dash.key("admin"))

    page = dash.open("dead-letters", "#dead-letters")
    page.wait_for_selector(f"tr[data-letter='{stranded}']")
    page.wait_for_selector(f"tr[data-letter='{poison}']")
    parked = page.locator(f"tr[data-letter='{stranded}']")
    expect(parked).to_contain_text("database unavailable")
    expect(parked).to_contain_text(f"baton.events → ui.{tag}.replayed (baton.event-store)")
    bad = page.locator(f"tr[data-letter='{poison}']")
    expect(bad).to_contain_text("malformed JSON")
    parked.locator("summary").click()  # inspect: the message as it was sent
    expect(parked.locator("pre")).to_be_visible()
    assert orjson.loads(parked.locator("pre").inner_text()) == event
    dash.shot("dead-letters")

    parked.get_by_role("button", name="Replay").click()
    expect(page.locator("#banner")).to_have_text("replay: 1 done")
    expect(page.locator(f"tr[data-letter='{stranded}']")).to_have_count(0)

    def stored() -> bool:
        return bool(dash.setup.api.get("/events", name=event["event"])["items"])

    wait_until(stored, what="the replayed event stored by the event store")

    expect(bad).to_have_count(1)  # the store parks it; the router ignores what the store refuses
    bad.get_by_role("button", name="Drop").click()
    expect(page.locator("#banner")).to_have_text("drop: 1 done")
    expect(page.locator(f"tr[data-letter='{poison}']")).to_have_count(0)
    letters = {d["message_id"] for d in dash.setup.api.get("/ui/dead_letters", limit=1000)}
    assert poison not in letters and stranded not in letters
