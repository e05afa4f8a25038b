"""States built without pydantic validation, for the engine's hot path.

Every task run makes three states; validating each one costs more than the rest of the task's
bookkeeping. The engine knows its values are valid, so it builds the model the way
`model_construct` does, minus its generic overhead. The result is an ordinary `State`
(serialisation, copying and validation as part of other models behave the same), which
tests/unit/sdk/test_fast_states.py checks against the validated constructors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from baton_schemas.states import State, StateType

_FIELDS_SET = frozenset({"id", "type", "name", "timestamp", "message", "scheduled_time", "data"})
_new = object.__new__
_set = object.__setattr__


def fast_state(
    state_type: StateType,
    name: str,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> State:
    state: State = _new(State)
    _set(
        state,
        "__dict__",
        {
            "id": uuid4(),
            "type": state_type,
            "name": name,
            "timestamp": datetime.now(UTC),
            "message": message,
            "scheduled_time": None,
            "data": data,
        },
    )
    _set(state, "__pydantic_fields_set__", set(_FIELDS_SET))
    _set(state, "__pydantic_extra__", None)
    _set(state, "__pydantic_private__", {"_result": None, "_exception": None, "_run_id": None})
    return state


def pending() -> State:
    return fast_state(StateType.PENDING, "Pending")


def running() -> State:
    return fast_state(StateType.RUNNING, "Running")


def completed(value: Any) -> State:
    state = fast_state(StateType.COMPLETED, "Completed")
    state.__pydantic_private__["_result"] = value  # type: ignore[index]
    return state
