"""What the server stores of flows run as `python flow.py`: retries, timeouts, the dependency
graph of a map, async flows, subflows, logs, parameter errors and cache hits."""

from __future__ import annotations

import logging

import pytest

from baton_schemas.states import State

from .conftest import Sdk


def names(states: list[State]) -> list[str]:
    return [state.name for state in states]


RETRYING_TASK = """
    from baton import flow, task

    attempts = 0


    @task(retries=2, retry_delay_seconds=0.1)
    def flaky() -> int:
        global attempts
        attempts += 1
        if attempts < 3:
            raise ValueError(f"attempt {attempts} fails")
        return attempts


    @flow(name="$name")
    def retrying_task() -> int:
        return flaky()


    if __name__ == "__main__":
        assert retrying_task() == 3
"""


async def test_a_task_that_fails_twice_then_succeeds_has_three_attempts_stored(sdk: Sdk) -> None:
    name = sdk.flow_name("retrying-task")
    await sdk.run_flow(RETRYING_TASK, name=name)
    run = await sdk.api.settled(name, task_runs=1)
    assert run.state.name == "Completed"

    [task_run] = await sdk.api.task_runs(run.id)
    assert (task_run.name, task_run.state.name, task_run.run_count) == ("flaky-0", "Completed", 3)
    history = await sdk.api.task_run_states(task_run.id)
    assert names(history) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    assert [s.type for s in history[2:6]] == ["SCHEDULED", "RUNNING", "SCHEDULED", "RUNNING"]
    logs = [r.message for r in await sdk.api.logs(run.id) if r.task_run_id == task_run.id]
    for attempt in (1, 2):
        assert any(f"ValueError: attempt {attempt} fails" in m and f"Retry {attempt}/2" in m for m in logs)


RETRYING_FLOW = """
    import sys

    from baton import flow, task


    @task
    def step(attempt: int) -> int:
        return attempt


    attempts = 0


    @flow(name="$name", retries=int(sys.argv[1]))
    def retrying_flow() -> int:
        global attempts
        attempts += 1
        step(attempts)
        if attempts == 1 or sys.argv[2] == "always":
            raise RuntimeError(f"attempt {attempts} fails")
        return attempts


    if __name__ == "__main__":
        retrying_flow()
"""


async def test_a_flow_that_fails_once_is_retried_by_the_server(sdk: Sdk) -> None:
    name = sdk.flow_name("retrying-flow")
    await sdk.run_flow(RETRYING_FLOW, "1", "once", name=name)
    run = await sdk.api.settled(name, task_runs=2)
    assert (run.state.name, run.run_count) == ("Completed", 2)
    history = await sdk.api.states(run.id)
    assert names(history) == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert "RuntimeError: attempt 1 fails" in (history[2].message or "")
    # a task run per attempt, both kept
    tasks = await sdk.api.task_runs(run.id)
    assert [(t.name, t.state.name) for t in tasks] == [("step-0", "Completed"), ("step-1", "Completed")]


async def test_a_flow_out_of_retries_ends_failed_and_its_process_fails(sdk: Sdk) -> None:
    name = sdk.flow_name("failing-flow")
    finished = await sdk.run_flow(RETRYING_FLOW, "1", "always", name=name, check=False)
    assert finished.returncode == 1
    assert "RuntimeError: attempt 2 fails" in finished.stderr
    run = await sdk.api.settled(name, task_runs=2)
    assert (run.state.type, run.run_count) == ("FAILED", 2)
    assert names(await sdk.api.states(run.id)) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Failed",
    ]
    assert "RuntimeError: attempt 2 fails" in (run.state.message or "")


TIMEOUTS = """
    import asyncio
    import sys
    import time

    from baton import flow, task


    def busy(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)


    @task(timeout_seconds=0.3)
    def slow_task() -> None:
        busy(20)


    @task
    def quick() -> str:
        return "done"


    @task
    def long_task() -> None:
        busy(20)


    @task
    async def long_async_task() -> None:
        await asyncio.sleep(20)


    @flow(name="$name")
    def task_times_out() -> None:
        quick()
        slow_task()


    @flow(name="$name", timeout_seconds=0.5)
    def flow_times_out() -> None:
        quick()
        long_task()


    @flow(name="$name", timeout_seconds=0.5)
    async def async_flow_times_out() -> None:
        quick()
        await long_async_task()


    if __name__ == "__main__":
        if sys.argv[1] == "task":
            task_times_out()
        elif sys.argv[1] == "flow":
            flow_times_out()
        else:
            asyncio.run(async_flow_times_out())
"""


async def test_a_task_timeout_is_stored_as_timed_out(sdk: Sdk) -> None:
    name = sdk.flow_name("task-timeout")
    finished = await sdk.run_flow(TIMEOUTS, "task", name=name, check=False)
    assert finished.returncode == 1 and "exceeded its timeout of 0.3 second(s)" in finished.stderr
    run = await sdk.api.settled(name, task_runs=2)
    assert run.state.type == "FAILED"
    quick, slow = await sdk.api.task_runs(run.id)
    assert quick.state.name == "Completed"
    assert (slow.state.type, slow.state.name) == ("FAILED", "TimedOut")
    assert slow.state.message == "Task run 'slow_task-0' exceeded its timeout of 0.3 second(s)"
    assert names(await sdk.api.task_run_states(slow.id)) == ["Pending", "Running", "TimedOut"]


@pytest.mark.parametrize("kind", ["flow", "async-flow"])
async def test_a_flow_timeout_is_stored_as_timed_out(sdk: Sdk, kind: str) -> None:
    name = sdk.flow_name(f"{kind}-timeout")
    finished = await sdk.run_flow(TIMEOUTS, kind, name=name, check=False)
    assert finished.returncode == 1 and "exceeded its timeout of 0.5 second(s)" in finished.stderr
    run = await sdk.api.settled(name, task_runs=2)
    assert (run.state.type, run.state.name) == ("FAILED", "TimedOut")
    assert names(await sdk.api.states(run.id)) == ["Pending", "Running", "TimedOut"]
    assert run.start_time is not None and run.end_time is not None
    assert 0.5 <= (run.end_time - run.start_time).total_seconds() < 5
    interrupted, quick = await sdk.api.task_runs(run.id)  # long_task-0 / long_async_task-0
    assert quick.state.name == "Completed"
    # the task run the timeout interrupted
    assert interrupted.state.name == "Cancelled"
    assert (interrupted.state.message or "").startswith("Interrupted: ")
    assert names(await sdk.api.task_run_states(interrupted.id)) == ["Pending", "Running", "Cancelled"]


MAP = """
    from baton import flow, task


    @task
    def load(i: int) -> dict:
        return {"i": i}


    @task
    def double(record: dict) -> int:
        return record["i"] * 2


    @task
    def total(values: list) -> int:
        return sum(values)


    @flow(name="$name")
    def fan_out_fan_in(n: int = 100) -> int:
        loaded = load.map(range(n))
        doubled = double.map(loaded)
        return total(doubled)


    if __name__ == "__main__":
        assert fan_out_fan_in() == 9900
"""


async def test_a_map_over_100_items_stores_its_dependency_graph(sdk: Sdk) -> None:
    name = sdk.flow_name("fan-out-fan-in")
    await sdk.run_flow(MAP, name=name)
    run = await sdk.api.settled(name, task_runs=201)
    assert run.state.name == "Completed" and run.parameters == {"n": 100}
    tasks = await sdk.api.task_runs(run.id)
    assert all(t.state.name == "Completed" for t in tasks)
    by_name = {t.name: t for t in tasks}
    assert len(by_name) == 201
    for i in range(100):
        assert by_name[f"load-{i}"].task_inputs == {}
        [edge] = by_name[f"double-{i}"].task_inputs["record"]
        assert (edge.input_type, edge.id) == ("task_run", by_name[f"load-{i}"].id)
    edges = by_name["total-0"].task_inputs["values"]
    assert [e.id for e in edges] == [by_name[f"double-{i}"].id for i in range(100)]


ASYNC = """
    import asyncio

    from baton import flow, task


    @task
    async def fetch(i: int) -> dict:
        await asyncio.sleep(0.01)
        return {"i": i}


    @task
    async def combine(values: list) -> int:
        return sum(value["i"] for value in values)


    @flow(name="$name")
    async def async_flow() -> int:
        called = await asyncio.gather(fetch(1), fetch(2))  # values, linked to their task runs
        submitted = [fetch.submit(i) for i in (3, 4)]  # futures
        return await combine([*called, *submitted])


    if __name__ == "__main__":
        assert asyncio.run(async_flow()) == 10
"""


async def test_async_flows_and_tasks(sdk: Sdk) -> None:
    name = sdk.flow_name("async-flow")
    await sdk.run_flow(ASYNC, name=name)
    run = await sdk.api.settled(name, task_runs=5)
    assert run.state.name == "Completed"
    assert names(await sdk.api.states(run.id)) == ["Pending", "Running", "Completed"]
    tasks = await sdk.api.task_runs(run.id)
    assert [(t.name, t.state.name) for t in tasks] == [
        ("combine-0", "Completed"),
        *((f"fetch-{i}", "Completed") for i in range(4)),
    ]
    fetched = {t.id for t in tasks if t.name.startswith("fetch")}
    assert {e.id for e in tasks[0].task_inputs["values"]} == fetched


SUBFLOWS = """
    import asyncio

    from baton import flow, task


    @task
    def shout(text: str) -> str:
        return text.upper()


    @flow(name="${name}-child")
    def child(text: str) -> str:
        return shout(text)


    @flow(name="${name}-async-child")
    async def async_child(text: str) -> str:
        return shout(text)


    @task
    def via_task(text: str) -> str:
        return child(text)


    @flow(name="$name")
    def parent() -> list:
        return [child("a"), child("b"), via_task("c")]


    @flow(name="${name}-async")
    async def async_parent() -> str:
        return await async_child("d")


    if __name__ == "__main__":
        assert parent() == ["A", "B", "C"]
        assert asyncio.run(async_parent()) == "D"
"""


async def test_subflows_point_at_their_parent_flow_run_and_task_run(sdk: Sdk) -> None:
    name = sdk.flow_name("parent")
    await sdk.run_flow(SUBFLOWS, name=name)
    parent = await sdk.api.settled(name, task_runs=4)  # child-0, child-1, via_task-0, child-2
    assert parent.parent_flow_run_id is None and parent.parent_task_run_id is None
    parent_tasks = {t.id: t for t in await sdk.api.task_runs(parent.id)}

    children = await sdk.api.runs(f"{name}-child")
    assert len(children) == 3
    for child in children:
        assert child.state.name == "Completed"
        assert child.parent_flow_run_id == parent.id
        stand_in = parent_tasks[child.parent_task_run_id]  # type: ignore[index]
        assert stand_in.state.name == "Completed"
        [shout] = await sdk.api.task_runs(child.id)
        assert shout.state.name == "Completed"
    stand_ins = sorted(parent_tasks[c.parent_task_run_id].name for c in children)  # type: ignore[index]
    assert stand_ins == [f"{name}-child-{i}" for i in range(3)]
    via_task = next(t for t in parent_tasks.values() if t.name == "via_task-0")
    nested = next(t for t in parent_tasks.values() if t.name == f"{name}-child-2")
    assert via_task.start_time is not None and nested.start_time is not None
    assert via_task.start_time <= nested.start_time  # child-2 was called from inside via_task

    async_parent = await sdk.api.settled(f"{name}-async", task_runs=1)
    [async_child] = await sdk.api.runs(f"{name}-async-child")
    [stand_in] = await sdk.api.task_runs(async_parent.id)
    assert async_child.parent_flow_run_id == async_parent.id
    assert async_child.parent_task_run_id == stand_in.id
    assert (async_child.state.name, stand_in.state.name) == ("Completed", "Completed")


LOGS = """
    import logging

    from baton import flow, get_run_logger, task


    @task
    def work(x: int) -> int:
        logger = get_run_logger()
        logger.debug("debug from the task")
        logger.info("working on %d", x)
        logger.warning("careful with %d", x)
        print("printed by the task")
        return x


    @task
    def broken() -> None:
        raise KeyError("missing")


    @flow(name="$name", log_prints=True)
    def logging_flow() -> None:
        logger = get_run_logger()
        logger.info("flow says hi")
        print("printed by the flow")
        work(7)
        broken.submit().wait()
        logger.error("flow error line")
        logging.getLogger("somebody.else").warning("not a run log")


    if __name__ == "__main__":
        logging_flow()
"""


async def test_run_logs_are_captured_with_their_levels_and_task_runs(sdk: Sdk) -> None:
    name = sdk.flow_name("logging-flow")
    await sdk.run_flow(LOGS, name=name)
    run = await sdk.api.settled(name, task_runs=2)
    assert run.state.name == "Completed"
    broken, work = await sdk.api.task_runs(run.id)
    assert (broken.name, broken.state.name, work.name) == ("broken-0", "Failed", "work-0")
    logs = await sdk.api.logs(run.id)
    seen = [(r.task_run_id, r.level, r.message) for r in logs]
    for expected in [
        (None, logging.INFO, "flow says hi"),
        (None, logging.INFO, "printed by the flow"),
        (work.id, logging.INFO, "working on 7"),
        (work.id, logging.WARNING, "careful with 7"),
        (work.id, logging.INFO, "printed by the task"),
        (None, logging.ERROR, "flow error line"),
    ]:
        assert expected in seen
    assert not any("debug from the task" in m or "not a run log" in m for *_, m in seen)  # INFO and up
    [failure] = [r for r in logs if r.task_run_id == broken.id and r.level == logging.ERROR]
    assert "KeyError: 'missing'" in failure.message and "Traceback" in failure.message
    assert {r.name for r in logs} == {"baton.flow_runs", "baton.task_runs"}
    assert all(r.flow_run_id == run.id for r in logs)


VALIDATION = """
    import sys

    from baton import flow


    @flow(name="$name")
    def typed(count: int, ratio: float = 1.0) -> float:
        return count * ratio


    @flow(name="${name}-marker")
    def marker() -> None:
        pass


    if __name__ == "__main__":
        try:
            typed(count="many", ratio=0.5)
        finally:
            marker()  # a later run: once it is stored, anything sent before it is too
"""


async def test_invalid_parameters_fail_the_process_clearly_and_create_nothing(sdk: Sdk) -> None:
    name = sdk.flow_name("typed")
    finished = await sdk.run_flow(VALIDATION, name=name, check=False)
    assert finished.returncode == 1
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("baton._exceptions.ParameterValidationError: Invalid parameters for flow")
    assert f"{name!r}" in last and "count: Input should be a valid integer" in last
    await sdk.api.settled(f"{name}-marker")
    assert await sdk.api.runs(name) == []


CACHED = """
    from baton import flow, task, task_input_hash

    calls = 0


    @task(cache_key_fn=task_input_hash)
    def expensive(x: int) -> int:
        global calls
        calls += 1
        return x * 10


    @flow(name="$name")
    def cached_flow() -> int:
        return expensive(4)


    if __name__ == "__main__":
        assert cached_flow() == 40
        print(f"calls={calls}")
"""


async def test_a_second_run_hits_the_cache(sdk: Sdk) -> None:
    name = sdk.flow_name("cached")
    first = await sdk.run_flow(CACHED, name=name)
    assert "calls=1" in first.stdout
    await sdk.api.settled(name, task_runs=1)
    second = await sdk.run_flow(CACHED, name=name)
    assert "calls=0" in second.stdout

    newer, older = await sdk.api.settled_runs(name, count=2, task_runs=1)
    [miss] = await sdk.api.task_runs(older.id)
    [hit] = await sdk.api.task_runs(newer.id)
    assert (miss.state.name, miss.run_count) == ("Completed", 1)
    assert (hit.state.type, hit.state.name, hit.run_count) == ("COMPLETED", "Cached", 0)
    assert hit.cache_key == miss.cache_key and hit.cache_key
    assert names(await sdk.api.task_run_states(hit.id)) == ["Pending", "Cached"]
