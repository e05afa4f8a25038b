"""Flow runs: options, parameters, retries (local and orchestrated), timeouts, subflows."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel

from baton import Abort, ParameterValidationError, RunTimeoutError, flow, task
from baton.states import AwaitingRetry, Cancelled, State, StateType, TransitionResult, Verdict
from baton_schemas.envelopes import ProposeState

from .conftest import RecordingReporter


def test_flow_with_and_without_parentheses() -> None:
    @flow
    def plain(x: int) -> int:
        return x + 1

    @flow(name="Named Flow", version="1.2", description="describes")
    def named() -> str:
        return "ok"

    assert plain.name == "plain" and plain(1) == 2
    assert named.name == "Named Flow" and named.version == "1.2"
    assert named.description == "describes"
    assert named() == "ok"


def test_flow_run_is_created_then_runs_then_completes(reporter: RecordingReporter) -> None:
    @flow(tags=["nightly"])
    def say_hello(name: str = "world") -> str:
        return f"hello {name}"

    state = say_hello("Arthur", return_state=True)
    assert state.is_completed() and state.result() == "hello Arthur"
    run = reporter.flow_run("say-hello")
    assert run.parameters == {"name": "Arthur"}
    assert run.tags == ["nightly"]
    assert run.state is not None and run.state.type is StateType.PENDING
    assert reporter.flow_states(run.id) == ["Running", "Completed"]
    assert reporter.tracked == set()  # heartbeats stopped


def test_flow_retries_locally(reporter: RecordingReporter) -> None:
    attempts: list[float] = []

    @flow(retries=2, retry_delay_seconds=0.05)
    def flaky() -> int:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ValueError("not yet")
        return len(attempts)

    assert flaky() == 3
    assert attempts[1] - attempts[0] >= 0.05
    assert attempts[2] - attempts[1] >= 0.05
    run = reporter.flow_run("flaky")
    assert reporter.flow_states(run.id) == [
        "Running",
        "Failed",
        "Retrying",
        "Failed",
        "Retrying",
        "Completed",
    ]


def test_flow_retries_exhausted_ends_failed() -> None:
    @flow(retries=1)
    def always_fails() -> None:
        raise ValueError("nope")

    state = always_fails(return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="nope"):
        state.result()


def test_with_a_server_the_flow_retries_when_told(reporter: RecordingReporter) -> None:
    """The orchestrator answers Failed with REJECT + AwaitingRetry while retries remain."""
    retries_left = {"n": 1}

    def decide(proposal: ProposeState) -> TransitionResult:
        if proposal.state.is_failed() and retries_left["n"] > 0:
            retries_left["n"] -= 1
            return TransitionResult(verdict=Verdict.REJECT, state=AwaitingRetry(delay_seconds=0.05))
        return TransitionResult(verdict=Verdict.ACCEPT, state=proposal.state)

    reporter.decide = decide
    attempts: list[int] = []

    @flow(retries=0)  # the server's answer decides, not the decorator
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first")
        return "second"

    assert flaky() == "second"
    run = reporter.flow_run("flaky")
    assert reporter.flow_states(run.id) == ["Running", "Failed", "Retrying", "Completed"]


def test_with_a_server_a_failed_flow_is_not_retried_unless_told(
    reporter: RecordingReporter,
) -> None:
    reporter.decide = lambda p: TransitionResult(verdict=Verdict.ACCEPT, state=p.state)

    @flow(retries=3)
    def fails() -> None:
        raise ValueError("x")

    assert fails(return_state=True).is_failed()
    run = reporter.flow_run("fails")
    assert run.retry_policy.retries == 3  # sent to the server, which applies it
    assert reporter.flow_states(run.id) == ["Running", "Failed"]


def test_wait_verdicts_are_honoured(reporter: RecordingReporter) -> None:
    answers = [
        TransitionResult(verdict=Verdict.WAIT, delay_seconds=0.05),
        None,
    ]
    transition_ids: list[Any] = []

    def decide(proposal: ProposeState) -> TransitionResult | None:
        transition_ids.append(proposal.transition_id)
        return answers.pop(0) if answers else None

    reporter.decide = decide

    @flow
    def waits() -> str:
        return "ran"

    started = time.monotonic()
    assert waits() == "ran"
    assert time.monotonic() - started >= 0.05
    run = reporter.flow_run("waits")
    assert reporter.flow_states(run.id) == ["Running", "Running", "Completed"]
    assert len(set(transition_ids)) == 3  # a new proposal after a WAIT


def test_abort_stops_the_run_before_it_starts(reporter: RecordingReporter) -> None:
    reporter.decide = lambda p: TransitionResult(verdict=Verdict.ABORT, reason="cancelled")
    ran: list[int] = []

    @flow
    def aborted() -> None:
        ran.append(1)

    with pytest.raises(Abort, match="cancelled"):
        aborted()
    assert ran == []


def test_a_terminal_rejection_is_adopted(reporter: RecordingReporter) -> None:
    reporter.decide = lambda p: TransitionResult(
        verdict=Verdict.REJECT, state=Cancelled(message="cancelled by a user")
    )

    @flow
    def cancelled() -> None:
        raise AssertionError("must not run")

    state = cancelled(return_state=True)
    assert state.type is StateType.CANCELLED


def test_a_scheduled_rejection_waits_for_its_time(reporter: RecordingReporter) -> None:
    answers: list[TransitionResult | None] = [
        TransitionResult(
            verdict=Verdict.REJECT,
            state=AwaitingRetry(delay_seconds=0.05),
        )
    ]
    reporter.decide = lambda p: answers.pop(0) if answers else None
    started = datetime.now(UTC)

    @flow
    def later() -> datetime:
        return datetime.now(UTC)

    assert later() - started >= timedelta(seconds=0.05)


def test_flow_timeout_ends_timed_out(reporter: RecordingReporter) -> None:
    release, finished = threading.Event(), threading.Event()

    @flow(timeout_seconds=0.1)
    def slow() -> None:
        release.wait(60)
        finished.set()

    state = slow(return_state=True)
    assert not finished.is_set()  # the flow ended without waiting for its body
    release.set()
    assert state.type is StateType.FAILED and state.name == "TimedOut"
    with pytest.raises(RunTimeoutError):
        state.result()
    assert reporter.flow_states(reporter.flow_run("slow").id)[-1] == "TimedOut"


async def test_async_flow_timeout_ends_timed_out() -> None:
    @flow(timeout_seconds=0.05)
    async def slow() -> None:
        await asyncio.sleep(5)

    state = await slow(return_state=True)
    assert state.name == "TimedOut"


class Point(BaseModel):
    x: int
    y: int


def test_parameters_are_validated_and_coerced(reporter: RecordingReporter) -> None:
    @flow
    def typed(count: int, point: Point, names: list[str] | None = None) -> tuple[int, Point]:
        return count, point

    count, point = typed("3", {"x": "1", "y": 2})  # type: ignore[arg-type]
    assert count == 3 and point == Point(x=1, y=2)
    run = reporter.flow_run("typed")
    assert run.parameters == {"count": 3, "point": {"x": 1, "y": 2}, "names": None}


def test_bad_parameters_raise_before_the_run_starts(reporter: RecordingReporter) -> None:
    @flow
    def typed(count: int, point: Point) -> None:
        raise AssertionError("must not run")

    with pytest.raises(ParameterValidationError) as raised:
        typed("many", {"x": 1})  # type: ignore[arg-type]
    assert raised.value.fields == ["count", "point.y"]
    assert "count" in str(raised.value) and "typed" in str(raised.value)
    with pytest.raises(ParameterValidationError, match="point"):
        typed(1)  # type: ignore[call-arg]
    with pytest.raises(ParameterValidationError, match="colour"):
        typed(1, Point(x=1, y=1), colour="red")  # type: ignore[call-arg]
    assert reporter.created == []


def test_validation_can_be_turned_off() -> None:
    @flow(validate_parameters=False)
    def untyped(count: int) -> Any:
        return count

    assert untyped("3") == "3"  # type: ignore[arg-type]


def test_arbitrary_types_and_var_args_are_accepted() -> None:
    class Opaque:
        pass

    @flow
    def anything(thing: Opaque, *args: int, **kwargs: str) -> tuple[Any, ...]:
        return thing, args, kwargs

    thing = Opaque()
    assert anything(thing, 1, 2, a="b") == (thing, (1, 2), {"a": "b"})


def test_subflows_are_linked_to_the_parent(reporter: RecordingReporter) -> None:
    @flow
    def child(x: int) -> int:
        return x * 10

    @flow
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 30
    parent_run = reporter.flow_run("parent")
    children = [run for run in reporter.created if run.flow_name == "child"]
    assert len(children) == 2
    stand_ins = reporter.task_runs(parent_run.id)
    for run in children:
        assert run.parent_flow_run_id == parent_run.id
        assert run.parent_task_run_id in stand_ins
        assert reporter.task_states(run.parent_task_run_id) == ["Pending", "Running", "Completed"]
    assert sorted(info.name for info in stand_ins.values()) == ["child-0", "child-1"]


def test_a_failing_subflow_fails_its_stand_in_task_run(reporter: RecordingReporter) -> None:
    @flow
    def child() -> None:
        raise ValueError("child failed")

    @flow
    def parent() -> State:
        return child(return_state=True)

    state = parent(return_state=True)
    assert state.is_failed()
    child_run = reporter.flow_run("child")
    assert child_run.parent_task_run_id is not None
    assert reporter.task_states(child_run.parent_task_run_id)[-1] == "Failed"


async def test_async_flows_and_tasks(reporter: RecordingReporter) -> None:
    @task
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @task
    def plus_one(x: int) -> int:
        return x + 1

    @flow
    async def pipeline(x: int) -> int:
        doubled = await double(x)
        both = await asyncio.gather(double(doubled), double(1))
        return plus_one(sum(both))

    assert await pipeline(5) == 23
    run = reporter.flow_run("pipeline")
    names = sorted(info.name for info in reporter.task_runs(run.id).values())
    assert names == ["double-0", "double-1", "double-2", "plus_one-0"]


async def test_async_subflow_of_an_async_flow(reporter: RecordingReporter) -> None:
    @flow
    async def child() -> str:
        return "child"

    @flow
    async def parent() -> str:
        return await child()

    assert await parent() == "child"
    assert reporter.flow_run("child").parent_flow_run_id == reporter.flow_run("parent").id


def test_a_flow_returning_failed_futures_fails() -> None:
    @task
    def bad() -> None:
        raise ValueError("bad")

    @task
    def good() -> int:
        return 1

    @flow
    def pipeline() -> list[Any]:
        return [good.submit(), bad.submit()]

    state = pipeline(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."
    with pytest.raises(ValueError, match="bad"):
        state.result()


def test_flow_with_options() -> None:
    @flow(retries=1)
    def original() -> int:
        return 1

    copy = original.with_options(retries=0, name="copy")
    assert copy.retries == 0 and copy.name == "copy" and copy() == 1


def test_a_flow_called_from_a_submitted_task_is_a_subflow(reporter: RecordingReporter) -> None:
    @flow
    def child() -> str:
        return "from child"

    @task
    def runs_a_flow() -> str:
        return child()

    @flow
    def parent() -> str:
        return runs_a_flow.submit().result()

    assert parent() == "from child"
    assert reporter.flow_run("child").parent_flow_run_id == reporter.flow_run("parent").id


def test_an_existing_flow_run_is_run_not_created(reporter: RecordingReporter) -> None:
    from baton._flow_engine import run_existing_flow_run
    from baton_schemas.runs import FlowRun
    from baton_schemas.states import Pending

    @flow
    def deployed(x: int) -> int:
        return x + 1

    now = datetime.now(UTC)
    existing = FlowRun(
        id=uuid4(),
        name="claimed-run",
        flow_id=uuid4(),
        flow_name="deployed",
        parameters={"x": "41"},
        state=Pending(),
        state_version=2,
        run_count=1,  # dispatched again after an AwaitingRetry
        created=now,
        updated=now,
    )
    state = run_existing_flow_run(deployed, existing)
    assert state.result() == 42
    assert reporter.created == []
    assert reporter.flow_states(existing.id) == ["Retrying", "Completed"]


def test_a_timed_out_flow_cancels_task_runs_that_never_started(reporter: RecordingReporter) -> None:
    import threading

    from baton import ThreadPoolTaskRunner

    release = threading.Event()

    @task
    def blocks() -> None:
        release.wait(10)

    @flow(timeout_seconds=0.2, task_runner=ThreadPoolTaskRunner(max_workers=1))
    def pipeline() -> None:
        blocks.submit()
        blocks.submit()  # queued behind the first: never starts
        time.sleep(5)

    try:
        state = pipeline(return_state=True)
    finally:
        release.set()
    assert state.name == "TimedOut"
    never_started = reporter.task_run_named("blocks-1")
    assert reporter.task_states(never_started.id) == ["Pending", "Cancelled"]
