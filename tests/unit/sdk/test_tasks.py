"""Task runs: states, retries, timeouts, returned states, failures and crashes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from baton import ParameterValidationError, RunTimeoutError, exponential_backoff, flow, task
from baton._retries import delay_for_retry, resolve_delays
from baton.states import Completed, Failed, State, StateType

from .conftest import RecordingReporter


def test_a_task_failing_twice_then_succeeding_takes_three_attempts(reporter: RecordingReporter) -> None:
    attempts: list[int] = []

    @task(retries=3)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError(f"attempt {len(attempts)} failed")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "ok"
    assert len(attempts) == 3
    run = reporter.task_run_named("flaky-0")
    assert reporter.task_states(run.id) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    versions = [r.version for r in reporter.task_reports if r.info.id == run.id]
    assert versions == list(range(1, 8))


def test_retries_exhausted_ends_failed_with_the_traceback(reporter: RecordingReporter) -> None:
    @task(retries=1)
    def broken() -> None:
        raise RuntimeError("boom")

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": broken(return_state=True)}

    state = pipeline()["state"]
    assert state.type is StateType.FAILED
    assert "Traceback" in (state.message or "")
    assert "RuntimeError: boom" in (state.message or "")
    assert 'raise RuntimeError("boom")' in (state.message or "")
    with pytest.raises(RuntimeError, match="boom"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), RuntimeError)
    run = reporter.task_run_named("broken-0")
    assert reporter.task_states(run.id)[-1] == "Failed"
    assert reporter.task_states(run.id).count("Retrying") == 1


def test_a_failed_task_fails_the_flow_when_its_exception_propagates() -> None:
    @task
    def broken() -> None:
        raise KeyError("missing")

    @flow
    def pipeline() -> None:
        broken()

    state = pipeline(return_state=True)
    assert state.is_failed()
    with pytest.raises(KeyError):
        pipeline()


def test_retry_delays_are_honoured(reporter: RecordingReporter) -> None:
    calls: list[float] = []

    @task(retries=2, retry_delay_seconds=[0.05, 0.1])
    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ValueError("again")

    @flow
    def pipeline() -> None:
        flaky()

    pipeline()
    assert calls[1] - calls[0] >= 0.05
    assert calls[2] - calls[1] >= 0.1
    awaiting = [r.state for r in reporter.task_reports if r.state.name == "AwaitingRetry"]
    assert len(awaiting) == 2
    assert all(state.scheduled_time is not None for state in awaiting)


def test_retry_delay_forms() -> None:
    assert resolve_delays(None, 3) == []
    assert resolve_delays(2, 3) == [2.0]
    assert resolve_delays([1, 2], 3) == [1.0, 2.0]
    assert resolve_delays(exponential_backoff(backoff_factor=0.5), 4) == [0.5, 1.0, 2.0, 4.0]
    assert delay_for_retry([1.0, 2.0], 1) == 1.0
    assert delay_for_retry([1.0, 2.0], 5) == 2.0  # past the end: the last one
    assert delay_for_retry([], 1) == 0.0
    for _ in range(50):
        assert 5.0 <= delay_for_retry([10.0], 1, jitter_factor=0.5) <= 15.0
    with pytest.raises(ValueError):
        resolve_delays([-1], 1)


def test_retry_condition_fn_can_refuse_a_retry(reporter: RecordingReporter) -> None:
    seen: list[Any] = []

    def only_value_errors(tsk: Any, task_run: Any, state: State) -> bool:
        seen.append((tsk.name, task_run.run_count, state.type))
        return isinstance(state.result(raise_on_failure=False), ValueError)

    @task(retries=5, retry_condition_fn=only_value_errors)
    def picky() -> None:
        raise TypeError("not retried")

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": picky(return_state=True)}

    state = pipeline()["state"]
    assert state.is_failed()
    assert seen == [("picky", 1, StateType.FAILED)]


def test_a_task_timeout_ends_timed_out(reporter: RecordingReporter) -> None:
    release, finished = threading.Event(), threading.Event()

    @task(timeout_seconds=0.1)
    def slow() -> None:
        release.wait(60)
        finished.set()

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": slow(return_state=True)}

    state = pipeline()["state"]
    assert not finished.is_set()  # the flow went on without waiting for the task's body
    release.set()
    assert state.type is StateType.FAILED
    assert state.name == "TimedOut"
    with pytest.raises(RunTimeoutError):
        state.result()
    run = reporter.task_run_named("slow-0")
    assert reporter.task_states(run.id) == ["Pending", "Running", "TimedOut"]


async def test_an_async_task_timeout_ends_timed_out() -> None:
    import asyncio

    @task(timeout_seconds=0.05)
    async def slow() -> None:
        await asyncio.sleep(5)

    @flow
    async def pipeline() -> dict[str, State]:
        return {"state": await slow(return_state=True)}

    state = (await pipeline())["state"]
    assert state.name == "TimedOut"


def test_a_timed_out_attempt_is_retried() -> None:
    attempts: list[int] = []

    @task(timeout_seconds=0.1, retries=1)
    def slow_then_fast() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(3)
        return "fast"

    @flow
    def pipeline() -> str:
        return slow_then_fast()

    assert pipeline() == "fast"


def test_a_returned_state_is_the_final_state(reporter: RecordingReporter) -> None:
    @task
    def decides(ok: bool) -> State:
        return Completed(message="fine") if ok else Failed(message="not today")

    @flow
    def pipeline() -> dict[str, State]:
        return {"good": decides(True, return_state=True), "bad": decides(False, return_state=True)}

    states = pipeline()
    good, bad = states["good"], states["bad"]
    assert good.is_completed() and good.message == "fine"
    assert bad.is_failed() and bad.message == "not today"
    with pytest.raises(Exception, match="not today"):
        bad.result()


def test_keyboard_interrupt_crashes_the_task_and_is_reraised(reporter: RecordingReporter) -> None:
    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    @flow
    def pipeline() -> None:
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        pipeline()
    run = reporter.task_run_named("interrupted-0")
    assert reporter.task_states(run.id) == ["Pending", "Running", "Crashed"]
    flow_run = reporter.flow_run("pipeline")
    assert reporter.flow_states(flow_run.id)[-1] == "Crashed"


def test_system_exit_crashes_the_flow() -> None:
    @flow
    def leaves() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        leaves()


def test_a_task_called_outside_a_flow_still_runs_with_retries() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def standalone(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError("once")
        return x * 2

    assert standalone(21) == 42
    assert attempts == [21, 21]


def test_task_options_and_with_options() -> None:
    @task(name="renamed", tags=["a"], retries=2)
    def original(x: int) -> int:
        """Doubles."""
        return x * 2

    assert original.name == "renamed" and original.tags == ["a"] and original.retries == 2
    assert original.__doc__ == "Doubles."
    changed = original.with_options(retries=0, name="other")
    assert changed.retries == 0 and changed.name == "other" and changed.tags == ["a"]
    with pytest.raises(TypeError):
        original.with_options(nonsense=1)
    with pytest.raises(ValueError):
        task(retries=-1)(lambda: None)


def test_tags_and_names_are_reported(reporter: RecordingReporter) -> None:
    @task(tags=["etl", "db"])
    def tagged() -> None:
        pass

    @flow
    def pipeline() -> None:
        tagged()
        tagged()

    pipeline()
    runs = sorted(reporter.task_runs().values(), key=lambda info: info.dynamic_key)
    assert [info.name for info in runs] == ["tagged-0", "tagged-1"]
    assert all(info.tags == ["etl", "db"] for info in runs)
    assert runs[0].task_key.endswith("tagged")


def test_parameter_validation_error_is_a_value_error() -> None:
    assert issubclass(ParameterValidationError, ValueError)
