"""State constructors and final state determination, as the reference system documents them:
a state the run made is its end as given; a run's states (or futures), alone or in a list,
tuple or set, are aggregated ("2/3 states failed."); whether calling the flow raises follows
the same rules as there (a collection is returned, a single failed state raises)."""

from __future__ import annotations

from typing import Any

import pytest

from baton import flow, task
from baton._exceptions import CancelledRun, FailedRun
from baton.states import Cancelled, Completed, Failed, State, StateType


def test_state_constructors_take_name_message_and_data() -> None:
    skipped = Completed(name="Skipped", message="nothing to do", data=42)
    assert (skipped.type, skipped.name, skipped.message) == (StateType.COMPLETED, "Skipped", "nothing to do")
    assert skipped.result() == 42
    assert skipped.data is None  # the stored field is a result reference, never the value
    assert Failed(name="Rejected").name == "Rejected" and Failed().name == "Failed"
    assert Cancelled(message="stop", name="Stopped").name == "Stopped"


def test_a_flow_or_task_returning_a_state_it_made_ends_in_it() -> None:
    @task
    def skip() -> State:
        return Completed(name="Skipped", data="nothing")

    @flow
    def decides() -> tuple[str, str]:
        state = skip(return_state=True)
        return state.name, state.result()

    @flow
    def gives_up() -> State:
        return Failed(message="no data today", data="hello!")

    assert decides() == ("Skipped", "nothing")
    state = gives_up(return_state=True)
    assert (state.type, state.message) == (StateType.FAILED, "no data today")
    assert state.result(raise_on_failure=False) == "hello!"
    with pytest.raises(FailedRun, match="hello!"):
        gives_up()


def test_completed_data_is_the_calls_value() -> None:
    @flow
    def made() -> dict[str, int]:
        return Completed(name="Skipped", data={"rows": 0})  # type: ignore[return-value]

    assert made() == {"rows": 0}
    assert made(return_state=True).name == "Skipped"


@task
def fail1() -> None:
    raise ValueError("Test 1")


@task
def fail2() -> None:
    raise ValueError("Test 2")


@task
def succeed() -> bool:
    return True


def test_returned_run_states_decide_the_flow_and_count_the_failures() -> None:
    @flow
    def foo() -> tuple[State, State, State]:
        return fail1(return_state=True), fail2(return_state=True), succeed(return_state=True)

    state = foo(return_state=True)
    assert state.is_failed() and state.message == "2/3 states failed."
    first, second, third = state.result(raise_on_failure=False)
    assert first.is_failed() and second.is_failed() and third.is_completed()
    with pytest.raises(ValueError, match="Test 1"):  # the first failure's exception
        state.result()
    # Calling it returns what it returned, the states, as the reference system's engine does.
    returned = foo()
    assert [s.type for s in returned] == [StateType.FAILED, StateType.FAILED, StateType.COMPLETED]


def test_returned_futures_become_their_states() -> None:
    @flow
    def all_good() -> list[Any]:
        return [succeed.submit(), succeed.submit()]

    @flow
    def with_a_failure() -> list[object]:
        return [succeed.submit(), fail1.submit(), succeed.submit()]

    state = all_good(return_state=True)
    assert state.is_completed() and state.message == "All states completed."
    assert [s.result() for s in all_good()] == [True, True]
    failed = with_a_failure(return_state=True)
    assert failed.is_failed() and failed.message == "1/3 states failed."


def test_a_single_run_state_returned_is_aggregated_and_raises_when_called() -> None:
    @flow
    def returns_failed() -> State:
        return fail1(return_state=True)

    @flow
    def returns_completed() -> State:
        return succeed(return_state=True)

    state = returns_failed(return_state=True)
    assert state.is_failed() and state.message == "1/1 states failed."
    inner = state.result(raise_on_failure=False)
    assert isinstance(inner, State) and inner.is_failed()
    with pytest.raises(ValueError, match="Test 1"):
        returns_failed()
    done = returns_completed(return_state=True)
    assert done.is_completed() and done.message == "All states completed."
    assert isinstance(returns_completed(), State)  # the state itself is the value


def test_a_cancelled_state_among_them_makes_the_flow_cancelled() -> None:
    @task
    def cancel() -> State:
        return Cancelled()

    @flow
    def my_flow() -> tuple[object, ...]:
        return cancel.submit(), succeed.submit(), fail1.submit()

    state = my_flow(return_state=True)
    assert state.is_cancelled() and state.message == "1/3 states cancelled."
    with pytest.raises(CancelledRun):
        state.result()


def test_a_subflows_returned_state_counts_like_a_tasks() -> None:
    @flow
    def child() -> object:
        return fail1.submit()

    @flow
    def parent() -> State:
        return child(return_state=True)

    state = parent(return_state=True)
    assert state.is_failed() and state.message == "1/1 states failed."


def test_futures_in_a_dict_are_made_states_but_do_not_decide_the_state() -> None:
    @flow
    def keyed() -> dict[str, Any]:
        return {"bad": fail1.submit()}

    state = keyed(return_state=True)
    assert state.is_completed()  # only lists, tuples and sets of states are aggregated
    assert keyed()["bad"].is_failed()


def test_a_plain_collection_of_values_is_completed_with_it() -> None:
    @flow
    def plain() -> list[int]:
        return [1, 2, 3]

    state = plain(return_state=True)
    assert state.is_completed() and state.result() == [1, 2, 3]
