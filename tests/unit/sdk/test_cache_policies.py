"""Cache policies as the reference system documents them: INPUTS, TASK_SOURCE, RUN_ID,
FLOW_PARAMETERS, NO_CACHE and DEFAULT, combined with `+`; refresh; unhashable inputs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from baton import flow, task
from baton.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CompoundCachePolicy,
)

from .conftest import RecordingReporter


def _counting(policy: object, **options: object) -> tuple[list[int], object]:
    calls: list[int] = []

    def work(x: int, noise: int = 0) -> int:
        calls.append(x)
        return x * 10

    return calls, task(cache_policy=policy, **options)(work)  # type: ignore[call-overload]


def test_inputs_caches_by_arguments_and_can_leave_one_out() -> None:
    calls, work = _counting(INPUTS - "noise")

    @flow
    def twice() -> list[int]:
        return [work(1, noise=1), work(1, noise=2), work(2)]  # type: ignore[operator]

    assert twice() == [10, 10, 20]
    assert twice() == [10, 10, 20]  # a later run hits the cache too
    assert calls == [1, 2]


def test_run_id_caches_within_one_flow_run_only(reporter: RecordingReporter) -> None:
    calls, work = _counting(RUN_ID + INPUTS)

    @flow
    def runs() -> list[int]:
        return [work(1), work(1)]  # type: ignore[operator]

    runs()
    runs()
    assert calls == [1, 1]  # once per flow run
    cached = [info.name for info in reporter.task_runs().values()]
    assert len(cached) == 4


def test_flow_parameters_and_default() -> None:
    calls, work = _counting(FLOW_PARAMETERS)

    @flow
    def by_parameters(day: str) -> int:
        return work(1)  # type: ignore[operator, no-any-return]

    by_parameters("mon")
    by_parameters("mon")
    by_parameters("tue")
    assert calls == [1, 1]
    assert isinstance(DEFAULT, CompoundCachePolicy) and len(DEFAULT.policies) == 3
    assert (INPUTS + NO_CACHE) is INPUTS and (NO_CACHE + TASK_SOURCE) is TASK_SOURCE


def test_no_cache_and_refresh() -> None:
    calls, never = _counting(NO_CACHE)
    refreshed_calls, refreshed = _counting(INPUTS, refresh_cache=True)

    @flow
    def runs() -> None:
        never(1)  # type: ignore[operator]
        never(1)  # type: ignore[operator]
        refreshed(1)  # type: ignore[operator]
        refreshed(1)  # type: ignore[operator]

    runs()
    assert calls == [1, 1] and refreshed_calls == [1, 1]


def test_unhashable_inputs_warn_and_run_uncached(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    @task(cache_policy=INPUTS)
    def locked(lock: object) -> str:
        ran.append("ran")
        return "done"

    @flow
    def uses_a_lock() -> list[str]:
        lock = threading.Lock()
        return [locked(lock), locked(lock)]

    assert uses_a_lock() == ["done", "done"]
    assert ran == ["ran", "ran"]
    assert "Not cached: the task's arguments (lock: lock) cannot be hashed" in caplog.text
    assert "cache_policy=NO_CACHE" in caplog.text


def test_task_source_changes_the_key_when_the_code_changes() -> None:
    namespace: dict[str, Any] = {}
    calls: list[str] = []
    for body in ("return 1", "return 2", "return 2"):
        exec(f"def source_task():\n    calls.append({body!r})\n    {body}\n", {"calls": calls}, namespace)
        cached: Any = task(cache_policy=TASK_SOURCE, name="source-task")(namespace["source_task"])

        @flow
        def runs(this: object = cached) -> None:
            this()  # type: ignore[operator]

        runs()
    assert calls == ["return 1", "return 2"]  # changed code is a new key; the same code hits
