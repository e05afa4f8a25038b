"""State hooks with the reference system's signatures: hook(flow, flow_run, state) and
hook(task, task_run, state); a hook that raises is logged and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from baton import flow, task
from baton.states import Cancelled, State

from .conftest import RecordingReporter

Calls = list[tuple[str, str, str]]


def recorder(calls: Calls, label: str) -> Any:
    def hook(owner: Any, run: Any, state: State) -> None:
        calls.append((label, owner.name, state.name))

    hook.__name__ = label
    return hook


def test_flow_hooks_run_on_running_completion_and_failure() -> None:
    calls: Calls = []

    @flow(
        name="hooked",
        on_running=[recorder(calls, "running")],
        on_completion=[recorder(calls, "completed")],
        on_failure=[recorder(calls, "failed")],
    )
    def hooked(fail: bool) -> str:
        if fail:
            raise ValueError("no")
        return "ok"

    assert hooked(False) == "ok"
    with pytest.raises(ValueError):
        hooked(True)
    assert calls == [
        ("running", "hooked", "Running"),
        ("completed", "hooked", "Completed"),
        ("running", "hooked", "Running"),
        ("failed", "hooked", "Failed"),
    ]


def test_on_failure_runs_once_after_the_retries() -> None:
    calls: Calls = []

    @flow(name="retried", retries=2, on_failure=[recorder(calls, "failed")])
    def retried() -> None:
        raise ValueError("always")

    retried(return_state=True)
    assert calls == [("failed", "retried", "Failed")]


def test_cancellation_and_crash_hooks() -> None:
    calls: Calls = []

    @flow(name="cancels", on_cancellation=[recorder(calls, "cancelled")])
    def cancels() -> State:
        return Cancelled(message="stop")

    @flow(name="crashes", on_crashed=[recorder(calls, "crashed")])
    def crashes() -> None:
        raise KeyboardInterrupt

    cancels(return_state=True)
    with pytest.raises(KeyboardInterrupt):
        crashes()
    assert calls == [("cancelled", "cancels", "Cancelled"), ("crashed", "crashes", "Crashed")]


def test_task_hooks_get_the_task_its_run_and_the_state() -> None:
    seen: list[tuple[str, str, str]] = []

    def on_done(tsk: Any, run: Any, state: State) -> None:
        seen.append((tsk.name, run.name, state.name))

    async def on_bad(tsk: Any, run: Any, state: State) -> None:  # async hooks are awaited
        seen.append((tsk.name, run.name, state.name))

    @task(on_completion=[on_done], on_failure=[on_bad])
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    @flow
    def runs_them() -> None:
        work(False)
        work.submit(True).wait()

    runs_them()
    assert seen == [("work", "work-0", "Completed"), ("work", "work-1", "Failed")]


def test_a_hook_that_raises_is_logged_and_changes_nothing(
    reporter: RecordingReporter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(owner: Any, run: Any, state: State) -> None:
        raise RuntimeError("hook broke")

    @flow(name="steady", on_completion=[broken])
    def steady() -> int:
        return 7

    assert steady() == 7
    assert reporter.flow_states(reporter.flow_run("steady").id)[-1] == "Completed"
    assert "An error was encountered while running hook 'broken'" in caplog.text


def test_hooks_ride_along_with_options() -> None:
    calls: Calls = []

    @flow(name="base")
    def base() -> None:
        pass

    base.with_options(on_completion=[recorder(calls, "done")])()
    base()
    assert calls == [("done", "base", "Completed")]


def test_a_hook_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_completion takes functions"):
        flow(on_completion=["not a function"])(lambda: None)  # type: ignore[list-item]
