"""`tags(...)` blocks, and run names from templates or callables."""

from __future__ import annotations

from datetime import date

import pytest

from baton import flow, tags, task

from .conftest import RecordingReporter


def test_tags_blocks_add_up_nest_and_end(reporter: RecordingReporter) -> None:
    @task(tags=["io"])
    def load() -> None:
        pass

    @flow(name="tagged", tags=["etl"])
    def tagged() -> None:
        load()
        with tags("inner"):
            load()

    with tags("nightly", "team-a") as current:
        assert current == {"nightly", "team-a"}
        with tags("nested") as inner:
            assert inner == {"nightly", "team-a", "nested"}
            tagged()
    tagged()

    first, second = [run for run in reporter.created if run.flow_name == "tagged"]
    assert first.tags == ["etl", "nested", "nightly", "team-a"]
    assert second.tags == ["etl"]  # the blocks have ended
    by_flow: dict[object, list[list[str]]] = {}
    for info in sorted(reporter.task_runs().values(), key=lambda i: i.name):
        by_flow.setdefault(info.flow_run_id, []).append(info.tags)
    assert by_flow[first.id] == [
        ["io", "etl", "nested", "nightly", "team-a"],  # its own, the flow run's, the blocks'
        ["io", "etl", "inner", "nested", "nightly", "team-a"],
    ]
    assert by_flow[second.id] == [["io", "etl"], ["io", "etl", "inner"]]


def test_tags_reach_a_task_called_outside_a_block_of_its_flow(reporter: RecordingReporter) -> None:
    @task
    def plain() -> None:
        pass

    @flow(name="plain-flow")
    def plain_flow() -> None:
        plain.submit().wait()

    with tags("from-caller"):
        plain_flow()
    [info] = reporter.task_runs().values()
    assert info.tags == ["from-caller"]
    assert reporter.flow_run("plain-flow").tags == ["from-caller"]


def test_run_names_from_templates_and_callables(reporter: RecordingReporter) -> None:
    def named_by_parameters(parameters: dict[str, object]) -> str:
        return f"load-{parameters['table']}"

    @task(task_run_name="fetch-{table}-{day:%Y-%m-%d}")
    def fetch(table: str, day: date) -> None:
        pass

    @task(task_run_name=named_by_parameters)
    def load(table: str) -> None:
        pass

    @flow(name="named", flow_run_name="{name}-on-{date:%Y-%m-%d}")
    def named(name: str, date: date) -> None:
        fetch(name, date)
        load(name)
        fetch.with_options(task_run_name=lambda: "fixed")(name, date)

    named("orders", date(2026, 1, 2))
    assert reporter.flow_run("named").name == "orders-on-2026-01-02"
    names = sorted(info.name for info in reporter.task_runs().values())
    assert names == ["fetch-orders-2026-01-02", "fixed", "load-orders"]

    renamed = named.with_options(flow_run_name=lambda: "by-hand")
    renamed("x", date(2026, 1, 3))
    assert any(run.name == "by-hand" for run in reporter.created)


def test_a_template_naming_an_unknown_parameter_is_a_clear_error() -> None:
    @flow(flow_run_name="{missing}")
    def oops(name: str) -> None:
        pass

    with pytest.raises(ValueError, match=r"flow_run_name '\{missing\}' names 'missing'.*use one of name"):
        oops("x")
