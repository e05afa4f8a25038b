"""Artifacts (issue 16, point 14): made from real flows and tasks, stored with their flow run,
task run and key (a key's artifacts are its history), listed by the API and
`baton artifact ls | inspect`."""

from __future__ import annotations

import json
import uuid

from .conftest import Sdk

FLOW = """
    import asyncio, math, sys
    from baton import flow, task
    from baton.artifacts import (
        acreate_markdown_artifact, create_link_artifact, create_markdown_artifact, create_table_artifact,
    )

    @task
    def totals(day: int) -> None:
        create_table_artifact(
            [{"region": "eu", "total": 10 * day}, {"region": "us", "total": math.nan}],
            key="$key-totals",
            description="Totals by region",
        )

    @flow(name="$name")
    def report(day: int) -> None:
        totals(day)
        create_markdown_artifact(f"# Day {day}\\n\\nAll regions loaded.", key="$key-report")
        create_link_artifact("https://example.com/dash", link_text="Dashboard")
        create_table_artifact({"a": [1, 2], "b": [3, 4]})

    @flow(name="$name-async")
    async def notes() -> None:
        await acreate_markdown_artifact("async *notes*", key="$key-report", description="from async")

    report(int(sys.argv[1]))
    if sys.argv[1] == "2":
        asyncio.run(notes())
"""


async def test_runs_make_artifacts_listed_with_their_runs_and_keys(sdk: Sdk) -> None:
    name, key = sdk.flow_name("artifacts"), f"k{uuid.uuid4().hex[:8]}"
    await sdk.run_flow(FLOW, "1", name=name, key=key)
    await sdk.run_flow(FLOW, "2", name=name, key=key)
    first, second = sorted(
        await sdk.api.settled_runs(name, count=2, task_runs=1), key=lambda run: run.created
    )
    [task_run] = await sdk.api.task_runs(second.id)

    of_second = (await sdk.api.http.get("/artifacts", params={"flow_run_id": str(second.id)})).json()
    assert sorted((a["type"], a["key"] or "-") for a in of_second) == [
        ("link", "-"),
        ("markdown", f"{key}-report"),
        ("table", "-"),
        ("table", f"{key}-totals"),
    ]
    [table] = [a for a in of_second if a["key"] == f"{key}-totals"]
    assert table["task_run_id"] == str(task_run.id) and table["description"] == "Totals by region"
    assert table["data"] == [{"region": "eu", "total": 20}, {"region": "us", "total": None}]  # NaN -> null
    [link] = [a for a in of_second if a["type"] == "link"]
    assert link["data"] == {"link": "https://example.com/dash", "link_text": "Dashboard"}
    assert link["task_run_id"] is None

    # a key's history: newest first, across runs (and the async flow's run)
    history = (await sdk.api.http.get("/artifacts", params={"key": f"{key}-report"})).json()
    assert [a["data"] for a in history] == [
        "async *notes*",
        "# Day 2\n\nAll regions loaded.",
        "# Day 1\n\nAll regions loaded.",
    ]
    assert history[2]["flow_run_id"] == str(first.id)

    listed = (await sdk.baton("artifact", "ls")).stdout.splitlines()
    assert listed[0].split() == ["ID", "Key", "Type", "Shows", "Flow", "run", "Created"]
    mine = [line.split() for line in listed if key in line]
    assert sorted((row[1], row[2]) for row in mine) == [
        (f"{key}-report", "markdown"),
        (f"{key}-totals", "table"),
    ]
    [totals_row] = [row for row in mine if row[2] == "table"]
    assert totals_row[3:5] == ["2", "rows"] and totals_row[5] == str(second.id)[:8]

    of_run = (await sdk.baton("artifact", "ls", "--flow-run", str(second.id)[:12])).stdout
    assert "Dashboard" in of_run and len([line for line in of_run.splitlines()[1:] if line.strip()]) == 4

    shown = (await sdk.baton("artifact", "inspect", f"{key}-totals")).stdout
    assert shown.count(f"{key}-totals  (") == 2  # both versions
    assert "Totals by region" in shown and "region" in shown and "eu" in shown
    eu_rows = [line.split() for line in shown.splitlines() if line.split()[:1] == ["eu"]]
    assert eu_rows == [["eu", "20"], ["eu", "10"]]  # newest first
    as_json = json.loads((await sdk.baton("artifact", "inspect", f"{key}-report", "--json")).stdout)
    assert [a["description"] for a in as_json][:1] == ["from async"]

    gone = await sdk.baton("artifact", "inspect", "no-such-key", check=False)
    assert gone.returncode == 1 and gone.stderr.strip() == "error: no artifact has the key 'no-such-key'"
    assert (await sdk.baton("artifact", "delete", f"{key}-totals")).stdout.startswith("Deleted")
    assert (await sdk.api.http.get("/artifacts", params={"key": f"{key}-totals"})).json() == []


async def test_bad_artifacts_are_refused_with_a_reason(sdk: Sdk) -> None:
    if sdk.transport == "amqp":  # the API check does not depend on how runs report
        return
    http = sdk.api.http
    cases = [
        ({"type": "markdown", "data": "x", "key": "Has Spaces"}, "is not an artifact key"),
        ({"type": "markdown", "data": {"not": "text"}}, "a markdown artifact's data is its text"),
        ({"type": "link", "data": "https://x"}, "a link artifact's data is"),
        ({"type": "table", "data": {"a": [1], "b": [1, 2]}}, "the same number of cells"),
        ({"type": "table", "data": [[1], {"a": 1}]}, "all lists or all objects"),
        ({"type": "chart", "data": 1}, "markdown"),
    ]
    for body, reason in cases:
        refused = await http.post("/artifacts", json=body)
        assert refused.status_code == 422 and reason in refused.text, (body, refused.text)
    made = await http.post("/artifacts", json={"type": "markdown", "data": "outside any run"})
    assert made.status_code == 201 and made.json()["flow_run_id"] is None
