"""Run loggers, log_prints, and the console lines of state changes."""

from __future__ import annotations

import logging

import pytest

from baton import MissingContextError, flow, get_run_logger, task

from .conftest import RecordingReporter


def test_get_run_logger_is_tied_to_the_current_run(reporter: RecordingReporter) -> None:
    @task
    def work() -> None:
        get_run_logger().warning("from the task")

    @flow
    def pipeline() -> None:
        get_run_logger().info("from the flow")
        work()

    pipeline()
    flow_run = reporter.flow_run("pipeline")
    task_run = reporter.task_run_named("work-0")
    by_message = {entry.message: entry for entry in reporter.logs}
    assert by_message["from the flow"].flow_run_id == flow_run.id
    assert by_message["from the flow"].task_run_id is None
    assert by_message["from the task"].task_run_id == task_run.id
    assert by_message["from the task"].level == logging.WARNING
    # state changes are run logs too
    assert "Finished in state Completed()" in [e.message for e in reporter.logs]


def test_get_run_logger_outside_a_run_raises() -> None:
    with pytest.raises(MissingContextError):
        get_run_logger()


def test_log_prints_captures_print_and_still_prints(
    reporter: RecordingReporter, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def greet(name: str) -> None:
        print(f"Hello, {name}")

    @task(log_prints=False)
    def quiet() -> None:
        print("not captured")

    @flow(log_prints=True)
    def pipeline() -> None:
        print("flow speaking")
        greet("Marvin")
        quiet()

    pipeline()
    out = capsys.readouterr().out
    assert "Hello, Marvin" in out and "flow speaking" in out and "not captured" in out
    messages = {entry.message: entry for entry in reporter.logs}
    assert messages["Hello, Marvin"].task_run_id == reporter.task_run_named("greet-0").id
    assert messages["flow speaking"].task_run_id is None
    assert "not captured" not in messages


def test_prints_are_not_captured_without_log_prints(reporter: RecordingReporter) -> None:
    @flow
    def pipeline() -> None:
        print("just printing")

    pipeline()
    assert "just printing" not in [entry.message for entry in reporter.logs]


def test_failed_runs_log_the_exception(reporter: RecordingReporter) -> None:
    @task
    def broken() -> None:
        raise ValueError("kaput")

    @flow
    def pipeline() -> None:
        broken()

    pipeline(return_state=True)
    errors = [e for e in reporter.logs if e.level == logging.ERROR]
    assert errors and "ValueError: kaput" in errors[0].message
    finished = [e.message for e in reporter.logs if e.message.startswith("Finished in state")]
    assert "Finished in state Failed('ValueError: kaput')" in finished
