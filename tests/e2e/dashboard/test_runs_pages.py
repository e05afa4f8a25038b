"""Runs in the browser: a run appears in the list while it runs and its state moves there live;
its page shows the task-run graph with its subflow, the live logs, the states; cancel a running
run and retry a failed one from its page."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import WAIT_MS, Dashboard


def test_a_run_appears_live_and_its_page_shows_graph_logs_and_subflow(dash: Dashboard) -> None:
    deployment = dash.setup.deployment("flows.py:pipeline", parameters={"n": 3, "sleep": 2.0, "marker": "m1"})
    dash.setup.start_worker()
    dash.sign_in(dash.key("admin"))
    page = dash.open("runs", "#runs")
    page.wait_for_selector("[data-live=on]")

    run = dash.setup.api.run(deployment)  # made after the page loaded: it must arrive live
    row = f"tr[data-run='{run['id']}']"
    page.wait_for_selector(f"{row} [data-state=RUNNING]")
    page.wait_for_selector(f"{row} [data-state=COMPLETED]")
    page.wait_for_selector("#histogram .seg.s-COMPLETED")
    dash.shot("runs-list")

    page.click(f"{row} a")
    page.wait_for_selector("#run-state [data-state=COMPLETED]")
    page.wait_for_selector("#task-graph")
    nodes = page.locator("#task-graph [data-task]")
    assert nodes.count() == 5  # load x3, total, and the task that ran the subflow
    assert page.locator("#task-graph line").count() >= 3  # load -> total x3 (and total -> child)
    assert page.locator("#task-graph [data-state=COMPLETED]").count() == 5
    page.wait_for_selector("#relatives [data-child]")
    assert "subflow" in page.inner_text("#relatives")
    expect(page.locator("#logs")).to_contain_text("pipeline done m1", timeout=WAIT_MS)
    assert "loading 2" in page.inner_text("#logs")
    assert [s.strip() for s in page.locator("#timeline [data-state]").all_inner_texts()] == [
        "Scheduled",
        "Pending",
        "Running",
        "Completed",
    ]
    assert '"n": 3' in page.inner_text("main")
    # its artifacts, each as its kind reads; markdown shown as text, never as markup
    page.wait_for_selector("#artifacts [data-artifact=out] a")
    report = page.locator("#artifacts [data-artifact=report]")
    assert "the summary" in report.inner_text() and "<b>not bold</b>" in report.inner_text()
    assert report.locator("b").count() == 0
    loads = page.locator("#artifacts [data-artifact=loads] table")
    assert loads.locator("th").all_inner_texts() == ["item", "value"]
    assert loads.locator("tbody tr").count() == 3 and "20" in loads.inner_text()
    link = page.locator("#artifacts [data-artifact=out] a")
    assert link.inner_text() == "the output" and link.get_attribute("href") == "https://example.com/out"
    dash.shot("run-page")

    page.click("#relatives [data-child] a")  # the subflow's own page names its parent
    expect(page.locator("#relatives")).to_contain_text(f"parent: pipeline / {run['name']}")


def test_cancel_a_running_run_and_retry_a_failed_one(dash: Dashboard) -> None:
    sleepy = dash.setup.deployment("flows.py:sleepy", parameters={"seconds": 120})
    fails = dash.setup.deployment("flows.py:fails")
    dash.setup.start_worker()
    dash.sign_in(dash.key("read", "run"))

    running = dash.setup.api.run(sleepy)
    page = dash.open(f"runs/{running['id']}", "#run-state")
    page.wait_for_selector("#run-state [data-state=RUNNING]")
    page.click("#cancel")
    page.wait_for_selector("#run-state [data-state=CANCELLED]")
    assert dash.setup.api.state_of(running["id"])["type"] == "CANCELLED"
    assert page.locator("#cancel").count() == 0

    failed = dash.setup.api.run(fails)
    page = dash.open(f"runs/{failed['id']}", "#run-state")
    page.wait_for_selector("#run-state [data-state=FAILED]")
    page.click("#retry")
    expect(page.locator("#timeline [data-state=FAILED]")).to_have_count(2, timeout=WAIT_MS)
    names = [s["name"] for s in dash.setup.api.states(failed["id"])]
    assert names.count("Failed") == 2 and "AwaitingRetry" in names
    assert dash.setup.api.read_run(failed["id"])["run_count"] == 2
