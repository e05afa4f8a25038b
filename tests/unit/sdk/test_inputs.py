"""Futures and states in a run's arguments, wherever they sit; `allow_failure` and `quote`; an
upstream that failed leaves its downstream Pending, named NotReady, as in the reference system."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from baton import UpstreamTaskError, allow_failure, flow, quote, task
from baton.states import State, StateType

from .conftest import RecordingReporter


@task
def one() -> int:
    return 1


@task
def broken() -> int:
    raise ValueError("broken")


@dataclasses.dataclass(frozen=True)
class Pair:
    left: Any
    right: Any


class Box(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    items: list[Any]
    label: str = "box"


def test_futures_and_states_are_resolved_inside_nested_containers() -> None:
    @task
    def look(value: Any) -> Any:
        return value

    @flow
    def nested() -> Any:
        a, b = one.submit(), one(return_state=True)
        arguments = (
            [a, (b, {a}), {"k": [a, {"deep": b}]}],
            Pair(a, [b]),
            Box(items=[a, b]),
        )
        return look(arguments)

    listed, pair, box = nested()
    assert listed == [1, (1, {1}), {"k": [1, {"deep": 1}]}]
    assert pair == Pair(1, [1])
    assert box == Box(items=[1, 1]) and box.label == "box"


def test_quote_passes_futures_as_they_are() -> None:
    @task
    def kind(value: Any) -> str:
        return type(value[0]).__name__

    @flow
    def quoted() -> str:
        return kind(quote([one.submit()]))

    assert quoted() == "BatonFuture"


def test_a_failed_upstream_leaves_the_task_pending_not_ready(reporter: RecordingReporter) -> None:
    ran: list[Any] = []

    @task
    def downstream(x: int) -> None:
        ran.append(x)

    @flow
    def pipeline() -> dict[str, State]:
        future = downstream.submit(broken.submit())
        future.wait()
        with pytest.raises(UpstreamTaskError, match="'broken-0' did not reach a 'COMPLETED' state"):
            future.result()
        return {"downstream": future.state}

    state = pipeline()["downstream"]
    assert ran == []
    assert (state.type, state.name) == (StateType.PENDING, "NotReady")
    assert reporter.task_states(reporter.task_run_named("downstream-0").id) == ["Pending", "NotReady"]


def test_not_ready_cascades_and_a_direct_call_raises() -> None:
    @task
    def add(x: int) -> int:
        return x + 1

    @flow
    def chain() -> tuple[str, str]:
        second = add.submit(broken.submit())
        third = add.submit(second)
        third.wait()
        with pytest.raises(UpstreamTaskError):
            add(second)
        return second.state.name, third.state.name

    assert chain() == ("NotReady", "NotReady")


def test_allow_failure_runs_the_task_with_the_upstreams_exception() -> None:
    @task
    def report(value: Any, ok: int) -> str:
        return f"{type(value).__name__} {ok}"

    @task
    def after() -> str:
        return "ran"

    @flow
    def tolerant() -> tuple[str, str]:
        failed = broken.submit()
        return (
            report(allow_failure(failed), one.submit()),
            after(wait_for=[allow_failure(failed)]),
        )

    assert tolerant() == ("ValueError 1", "ran")


def test_wait_for_a_failed_upstream_is_not_ready() -> None:
    @task
    def after() -> str:
        return "ran"

    @flow
    def waits() -> str:
        future = after.submit(wait_for=[broken.submit()])
        future.wait()
        return future.state.name

    assert waits() == "NotReady"


def test_a_future_passed_to_a_subflow_is_resolved_before_validation() -> None:
    @flow
    def child(x: int, items: list[int]) -> int:
        return x + sum(items)

    @flow
    def parent() -> int:
        return child(one.submit(), [one.submit(), one(return_state=True)])

    assert parent() == 3


def test_an_async_subflow_resolves_futures_too() -> None:
    @flow
    async def child(x: int) -> int:
        return x * 10

    @flow
    async def parent() -> int:
        return await child(one.submit())

    assert asyncio.run(parent()) == 10


def test_flow_parameters_are_coerced_laxly_as_pydantic_does() -> None:
    @flow
    def typed(x: int, ratio: float, flag: bool, names: list[str]) -> tuple[Any, ...]:
        return x, ratio, flag, names

    assert typed("3", "0.5", "yes", ("a",)) == (3, 0.5, True, ["a"])  # type: ignore[arg-type]
