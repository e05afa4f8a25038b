"""What a run's return value makes of its final state, by the reference system's rules.

- A state the user made (`Completed(name="Skipped")`, `Failed(message=...)`) is the final
  state as given; its `data` is the run's value.
- A run's own state (a future's, `return_state=True`), or a list, tuple or set made only of
  them, is aggregated: all Completed gives Completed ("All states completed."), any Cancelled
  gives Cancelled ("1/3 states cancelled."), anything else gives Failed ("2/3 states
  failed."). The states are the run's value; the exception to raise is the first failure's.
- Anything else is Completed with that value.

A flow's return value has its futures replaced by their final states first, wherever they sit
in lists, tuples, sets and dicts. Calling a flow then returns the value it returned (with
those states), except when the value is a single state: then it returns that state's result,
raising its exception if it failed.
"""

from __future__ import annotations

from typing import Any

from baton_schemas.states import Cancelled, Completed, Failed, State, StateType

from ._exceptions import BatonError, CancelledRun, CrashedRun, FailedRun
from ._futures import BatonFuture

_FLAT = (list, tuple, set, frozenset)
_RUN_ERRORS: dict[StateType, type[BatonError]] = {
    StateType.FAILED: FailedRun,
    StateType.CRASHED: CrashedRun,
    StateType.CANCELLED: CancelledRun,
}
_BAD = (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)


def is_run_state(value: Any) -> bool:
    """A state of some run (set by an engine), not one the user made."""
    return isinstance(value, State) and value._run_id is not None


def mark(state: State, run_id: Any) -> State:
    """Make `state` the state of run `run_id` (it no longer counts as made by the user)."""
    private = state.__pydantic_private__
    if private is not None:
        private["_run_id"] = run_id
    return state


def futures_to_states(value: Any) -> Any:
    """`value` with every future replaced by its final state (waiting for it), in lists, tuples,
    sets and dicts at any depth. A value without futures comes back as it is."""
    if isinstance(value, BatonFuture):
        return value.final_state()
    if isinstance(value, _FLAT):
        if not value:
            return value
        items = [futures_to_states(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        if isinstance(value, tuple) and type(value) is not tuple:  # a named tuple
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, dict):
        changed = {key: futures_to_states(item) for key, item in value.items()}
        if all(changed[key] is item for key, item in value.items()):
            return value
        return type(value)(changed) if type(value) is not dict else changed
    return value


def is_state_collection(value: Any) -> bool:
    """A non-empty list, tuple or set of states only (dicts and other containers are not)."""
    return isinstance(value, list | tuple | set) and bool(value) and all(isinstance(v, State) for v in value)


def exception_of(state: State) -> BaseException:
    """What `state.result()` raises: its own exception, that of the first failure it holds, or
    a FailedRun / CrashedRun / CancelledRun with its message (or the string it holds)."""
    if state._exception is not None:
        return state._exception
    held = state._result
    if isinstance(held, State):
        return exception_of(held)
    if is_state_collection(held):
        for inner in held:
            if inner.type in _BAD:
                return exception_of(inner)
    error = _RUN_ERRORS.get(state.type, FailedRun)
    return error(held if isinstance(held, str) else state.message or f"Run ended in state {state.name}")


def adopt_returned_state(state: State) -> State:
    """A run returned a state it made (or the server moved it to one): it becomes the final
    state; a failure gets the exception `result()` raises."""
    if state.type in _BAD and state._exception is None:
        state._exception = exception_of(state)
    return state


def aggregate(value: Any) -> State:
    """The final state of a run that returned a run's state or a collection of them."""
    states: list[State] = [value] if isinstance(value, State) else list(value)
    total = len(states)
    cancelled = sum(1 for s in states if s.type is StateType.CANCELLED)
    failed = sum(1 for s in states if s.type in (StateType.FAILED, StateType.CRASHED))
    if all(s.type is StateType.COMPLETED for s in states):
        return Completed(message="All states completed.").with_result(value)
    if cancelled:
        state = Cancelled(message=f"{cancelled}/{total} states cancelled.")
    elif failed:
        state = Failed(message=f"{failed}/{total} states failed.")
    else:
        unfinished = sum(1 for s in states if not s.is_terminal)
        state = Failed(message=f"{unfinished}/{total} states are not final.")
    state._result = value
    state._exception = exception_of(state)
    return state


def state_from_return(value: Any) -> State | None:
    """The final state a returned value decides, or None for a plain value (Completed with it)."""
    if isinstance(value, State):
        return aggregate(value) if is_run_state(value) else adopt_returned_state(value)
    if is_state_collection(value):
        return aggregate(value)
    return None
