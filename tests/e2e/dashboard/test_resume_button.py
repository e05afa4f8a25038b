"""A paused run's page resumes it: the Resume button asks for the input the pause waits for,
and the server's refusal of a bad one shows in the banner."""

from __future__ import annotations

import json
import textwrap

from playwright.sync_api import Dialog, expect

from ..worker.test_pauses import PAUSING
from .conftest import WAIT_MS, Dashboard


def test_resume_a_paused_run_from_its_page_with_its_input(dash: Dashboard) -> None:
    (dash.setup.folder / "pausing.py").write_text(textwrap.dedent(PAUSING))
    out = dash.setup.folder / "approval.json"
    deployment = dash.setup.deployment("pausing.py:approve", parameters={"out": str(out)})
    dash.setup.start_worker()
    dash.sign_in(dash.key("read", "run"))
    run = dash.setup.api.run(deployment)
    dash.setup.api.wait_state(run["id"], "PAUSED", timeout=60)
    page = dash.open(f"runs/{run['id']}", "#run-state [data-state=PAUSED]")

    answers = iter(['{"approved": "perhaps"}', '{"approved": true, "note": "from the page"}'])
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(next(answers))

    page.on("dialog", answer)
    page.click("#resume")
    expect(page.locator("#banner")).to_contain_text("resume refused", timeout=WAIT_MS)
    assert "approved" in page.inner_text("#banner")
    assert dash.setup.api.state_of(run["id"])["type"] == "PAUSED"
    page.click("#resume")
    page.wait_for_selector("#run-state [data-state=COMPLETED]")
    prefix, fields = asked[0].split(": ", 1)
    assert prefix == "Input for pause-1 (a JSON object" and sorted(fields.rstrip(")").split(", ")) == [
        "approved",
        "note",
    ]
    assert json.loads(out.read_text()) == {"approved": True, "note": "from the page"}
    assert page.locator("#resume").count() == 0


def test_pause_a_running_run_from_its_page_and_resume_it(dash: Dashboard) -> None:
    """Pause on a running deployment run suspends it (its worker stops the process); Resume has
    a worker start it again."""
    sleepy = dash.setup.deployment("flows.py:sleepy", parameters={"seconds": 3})
    dash.setup.start_worker()
    dash.sign_in(dash.key("read", "run"))
    run = dash.setup.api.run(sleepy)
    page = dash.open(f"runs/{run['id']}", "#run-state")
    page.wait_for_selector("#run-state [data-state=RUNNING]")
    page.click("#suspend")
    page.wait_for_selector("#run-state [data-state=PAUSED]")
    state = dash.setup.api.state_of(run["id"])
    assert (state["name"], state["message"]) == ("Suspended", "paused from the dashboard")
    assert page.locator("#suspend").count() == 0
    page.click("#resume")
    page.wait_for_selector("#run-state [data-state=COMPLETED]", timeout=WAIT_MS * 2)
    names = [s["name"] for s in dash.setup.api.states(run["id"])]
    assert names[names.index("Suspended") :][:2] == ["Suspended", "Resuming"]
