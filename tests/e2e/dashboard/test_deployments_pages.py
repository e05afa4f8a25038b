"""Deployments in the browser: schedules with their next run times and the Late count (live);
the "run" form generated from the parameter schema, a bad parameter refused before it is sent
(and by the API when sent anyway), a good one making a run that a worker runs; pause, resume."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Request, expect

from baton._deploy.schema import parameter_schema

from .conftest import WAIT_MS, Dashboard


def typed(count: int, label: str = "x") -> str:  # the signature of FLOWS' `typed`
    return label * count


def _deployment(dash: Dashboard, **fields: Any) -> dict[str, Any]:
    return dash.setup.deployment("flows.py:typed", parameter_schema=parameter_schema(typed), **fields)


def test_schedules_next_runs_and_the_late_count(dash: Dashboard) -> None:
    deployment = _deployment(
        dash,
        # once a year, at 03:00 on January 1st: no slot falls due while the test runs
        schedules=[{"schedule": {"kind": "cron", "cron": "0 3 1 1 *"}, "slug": "new-year"}],
        schedule_policy={"late_after": 1},
    )
    dash.sign_in(dash.key("read"))
    page = dash.open("deployments", f"tr[data-deployment='{deployment['id']}']")
    page.wait_for_selector("[data-live=on]")
    row = page.locator(f"tr[data-deployment='{deployment['id']}']")
    expect(row.locator("td.late")).to_have_text("0")
    schedules = row.locator("td").nth(2).inner_text()
    assert "new-year: cron 0 3 1 1 *" in schedules
    upcoming = dash.setup.api.get(f"/deployments/{deployment['id']}/schedules/upcoming", n=3)
    years = [start[:4] for start in upcoming[0]["starts"]]
    assert len(set(years)) == 3 and all(year in schedules for year in years), (years, schedules)

    late = dash.setup.api.run(deployment, parameters={"count": 1})  # no worker serves the pool
    expect(row.locator("td.late")).to_have_text("1", timeout=WAIT_MS)  # live, from the Late event
    assert dash.setup.api.state_of(late["id"])["name"] == "Late"
    dash.shot("deployments")
    dash.setup.start_worker()  # taken at last: no longer Late, and the count says so
    dash.setup.api.wait_state(late["id"], "COMPLETED")
    expect(row.locator("td.late")).to_have_text("0")

    page = dash.open(f"deployments/{deployment['id']}", "#deployment-status")
    assert page.locator("#run-form").count() == 0  # a read key gets no form
    assert "new-year" in page.inner_text("main") and years[0] in page.inner_text("main")


def test_the_run_form_refuses_a_bad_parameter_and_runs_a_good_one(dash: Dashboard) -> None:
    deployment = _deployment(dash)
    dash.sign_in(dash.key("read", "run"))
    page = dash.open(f"deployments/{deployment['id']}", "#run-form")
    assert page.locator("#run-form .field").count() == 2
    assert page.input_value("#param-label") == "x"  # the schema's default
    assert page.inner_text("label[for=param-count]").strip() == "count *"  # required
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "POST":
            sent.append(request.url)

    page.on("request", record)
    page.click("#run-submit")
    expect(page.locator("[data-error=count]")).to_have_text("required")
    page.fill("#param-count", "two")
    page.click("#run-submit")
    expect(page.locator("[data-error=count]")).to_have_text("not an integer: two")
    expect(page.locator("#run-form-error")).to_have_text("Fix the parameters above: nothing was sent.")
    page.fill("#param-count", "1.5")
    page.click("#run-submit")
    expect(page.locator("[data-error=count]")).to_have_text("not an integer: 1.5")
    assert sent == []
    assert dash.setup.api.get("/flow_runs", deployment_id=deployment["id"])["items"] == []
    dash.shot("deployment-run-form-refused")

    # the API refuses the same parameter when it is sent anyway
    refused = dash.fetch(
        "POST", f"/api/deployments/{deployment['id']}/runs", {"parameters": {"count": "two"}}
    )
    assert refused["status"] == 422, refused
    assert "count" in refused["body"], refused
    refused = dash.fetch("POST", f"/api/deployments/{deployment['id']}/runs", {"parameters": {"nope": 1}})
    assert refused["status"] == 422 and "nope" in refused["body"], refused
    assert dash.setup.api.get("/flow_runs", deployment_id=deployment["id"])["items"] == []

    page.fill("#param-count", "3")
    page.fill("#param-label", "ab")
    page.click("#run-submit")
    page.wait_for_url("**/#/runs/*")
    run_id = page.url.rsplit("/", 1)[1]
    assert dash.setup.api.read_run(run_id)["parameters"] == {"count": 3, "label": "ab"}
    dash.setup.start_worker()
    page.wait_for_selector("#run-state [data-state=COMPLETED]")
    expect(page.locator("#logs")).to_contain_text("typed 3 ab", timeout=WAIT_MS)  # what it printed


def test_pause_and_resume_a_deployment(dash: Dashboard) -> None:
    deployment = _deployment(dash)
    dash.sign_in(dash.key("read", "deploy"))
    page = dash.open(f"deployments/{deployment['id']}", "#deployment-status")
    expect(page.locator("#deployment-status")).to_have_text("active")
    page.click("#pause-deployment")
    expect(page.locator("#deployment-status")).to_have_text("paused")
    assert dash.setup.api.get(f"/deployments/{deployment['id']}")["paused"] is True
    expect(page.locator("#pause-deployment")).to_have_text("Resume")
    dash.shot("deployment-paused")

    page = dash.open("deployments", f"tr[data-deployment='{deployment['id']}']")
    row = page.locator(f"tr[data-deployment='{deployment['id']}']")
    expect(row.locator("td.paused")).to_have_text("paused")
    row.locator("button.pause").click()  # resume from the list
    expect(row.locator("td.paused")).to_have_text("active")
    assert dash.setup.api.get(f"/deployments/{deployment['id']}")["paused"] is False
