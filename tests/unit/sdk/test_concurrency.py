"""Futures, submit, map, wait_for, wait, as_completed, and the recorded dependency graph."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from baton import (
    BatonFuture,
    MissingContextError,
    ThreadPoolTaskRunner,
    UpstreamTaskError,
    as_completed,
    flow,
    task,
    unmapped,
    wait,
)
from baton_schemas.runs import TaskInputType

from .conftest import RecordingReporter


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(values: list[int]) -> int:
    return sum(values)


def test_submit_returns_a_future() -> None:
    @flow
    def pipeline() -> tuple[Any, ...]:
        future = square.submit(7)
        assert isinstance(future, BatonFuture)
        future.wait()
        return future.result(), future.state.name, future.done()

    assert pipeline() == (49, "Completed", True)


def test_submitted_sync_tasks_run_on_pool_threads() -> None:
    threads: set[str] = set()

    @task
    def where() -> None:
        threads.add(threading.current_thread().name)

    @flow
    def pipeline() -> None:
        where()
        where.submit().wait()

    pipeline()
    assert threading.current_thread().name in threads
    assert any(name.startswith("baton-task") for name in threads)


def test_map_over_100_items_records_the_dependency_graph(reporter: RecordingReporter) -> None:
    @flow
    def pipeline() -> int:
        squares = square.map(range(100))
        offsets = add.map(squares, unmapped(1))
        return total(offsets)

    assert pipeline() == sum(x * x + 1 for x in range(100))
    run = reporter.flow_run("pipeline")
    runs = reporter.task_runs(run.id)
    squares = {info.id: info for info in runs.values() if info.name.startswith("square-")}
    adds = [info for info in runs.values() if info.name.startswith("add-")]
    totals = [info for info in runs.values() if info.name.startswith("total-")]
    assert len(squares) == 100 and len(adds) == 100 and len(totals) == 1
    assert all(info.task_inputs == {} for info in squares.values())
    upstream_of_adds = set()
    for info in adds:
        assert list(info.task_inputs) == ["x"]
        (edge,) = info.task_inputs["x"]
        assert edge.input_type is TaskInputType.TASK_RUN and edge.id in squares
        upstream_of_adds.add(edge.id)
    assert upstream_of_adds == set(squares)  # one add per square
    # `total` got the list of results of the adds: each one is an edge
    assert {edge.id for edge in totals[0].task_inputs["values"]} == {info.id for info in adds}
    for info in runs.values():
        assert reporter.task_states(info.id) == ["Pending", "Running", "Completed"]


def test_results_passed_on_are_recorded_as_upstream(reporter: RecordingReporter) -> None:
    @task
    def words() -> list[str]:
        return ["a", "b"]

    @task
    def shout(items: list[str]) -> list[str]:
        return [item.upper() for item in items]

    @flow
    def pipeline() -> list[str]:
        return shout(words())

    assert pipeline() == ["A", "B"]
    producer = reporter.task_run_named("words-0")
    consumer = reporter.task_run_named("shout-0")
    assert [edge.id for edge in consumer.task_inputs["items"]] == [producer.id]


def test_wait_for_is_recorded_and_honoured(reporter: RecordingReporter) -> None:
    order: list[str] = []
    gate = threading.Event()

    @task
    def first() -> None:
        gate.wait(5)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def pipeline() -> None:
        before = first.submit()
        after = second.submit(wait_for=[before])
        gate.set()
        after.wait()

    pipeline()
    assert order == ["first", "second"]
    second_run = reporter.task_run_named("second-0")
    first_run = reporter.task_run_named("first-0")
    assert [edge.id for edge in second_run.task_inputs["wait_for"]] == [first_run.id]


def test_a_failed_upstream_stops_the_downstream(reporter: RecordingReporter) -> None:
    ran: list[int] = []

    @task
    def broken() -> int:
        raise ValueError("broken")

    @task
    def downstream(x: int) -> None:
        ran.append(x)

    @flow
    def pipeline() -> None:
        future = downstream.submit(broken.submit())
        with pytest.raises(UpstreamTaskError):
            future.result()

    pipeline(return_state=True)
    assert ran == []
    # it never ran: Pending, named NotReady (not Failed), as in the reference system
    assert reporter.task_states(reporter.task_run_named("downstream-0").id) == ["Pending", "NotReady"]


def test_map_with_futures_and_mismatched_lengths() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @flow
    def pipeline() -> list[int]:
        return square.map(numbers.submit()).result()

    assert pipeline() == [1, 4, 9]

    @flow
    def bad() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(ValueError, match="different lengths"):
        bad()


def test_wait_and_as_completed() -> None:
    release = threading.Event()

    @task
    def blocked() -> str:
        release.wait(5)
        return "blocked"

    @task
    def quick() -> str:
        return "quick"

    @flow
    def pipeline() -> list[str]:
        slow_future = blocked.submit()
        quick_future = quick.submit()
        done, not_done = wait([quick_future], timeout=5)
        assert done == {quick_future} and not not_done
        done, not_done = wait([slow_future, quick_future], timeout=0.01)
        assert slow_future in not_done
        order = []
        for future in as_completed([slow_future, quick_future], timeout=5):
            order.append(future.result())
            release.set()
        return order

    assert pipeline() == ["quick", "blocked"]


def test_futures_list_helpers() -> None:
    @flow
    def pipeline() -> list[int]:
        futures = square.map([1, 2, 3])
        futures.wait()
        assert all(future.done() for future in futures)
        return futures.result()

    assert pipeline() == [1, 4, 9]


def test_the_flow_waits_for_submitted_tasks() -> None:
    finished: list[int] = []

    @task
    def later() -> None:
        finished.append(1)

    @flow
    def pipeline() -> None:
        later.submit()

    pipeline()
    assert finished == [1]


def test_async_tasks_submitted_from_a_sync_flow_share_an_event_loop() -> None:
    loops: set[int] = set()

    @task
    async def fetch(x: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return x

    @flow
    def pipeline() -> list[int]:
        return fetch.map([1, 2, 3]).result()

    assert pipeline() == [1, 2, 3]
    assert len(loops) == 1


async def test_futures_can_be_awaited_in_async_flows() -> None:
    @task
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @flow
    async def pipeline() -> list[int]:
        futures = [fetch.submit(i) for i in range(3)]
        return [await future for future in futures]

    assert await pipeline() == [1, 2, 3]


def test_max_workers_bounds_the_pool() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    @task
    def busy(_: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        with lock:
            running -= 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline() -> None:
        busy.map(range(20)).wait()

    pipeline()
    assert 1 <= peak <= 2


def test_submit_outside_a_flow_is_refused() -> None:
    with pytest.raises(MissingContextError):
        square.submit(1)
    with pytest.raises(MissingContextError):
        square.map([1])
