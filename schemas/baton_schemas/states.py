"""Run states: nine types, named states riding on them, and the verdicts on a proposal."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import Field, PrivateAttr

from ._base import BatonModel, utcnow
from .limits import Message


class StateType(StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TYPES

    @property
    def routing_word(self) -> str:
        """The word used in `baton.states` routing keys, e.g. `failed`."""
        return self.value.lower()


TERMINAL_TYPES = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
_FAILURE_TYPES = frozenset({StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})

# Named states and the type each rides on.
NAMED_STATES: dict[str, StateType] = {
    "Late": StateType.SCHEDULED,
    "AwaitingRetry": StateType.SCHEDULED,
    "AwaitingConcurrencySlot": StateType.SCHEDULED,
    "Retrying": StateType.RUNNING,
    "Cached": StateType.COMPLETED,
    "TimedOut": StateType.FAILED,
    "Suspended": StateType.PAUSED,
}


def default_name(state_type: StateType) -> str:
    return state_type.value.capitalize()


class State(BatonModel):
    """A state of a flow run or task run. `data` holds a JSON result reference, never a value."""

    id: UUID = Field(default_factory=uuid4)
    type: StateType
    name: str = ""
    timestamp: datetime = Field(default_factory=utcnow)
    message: Message | None = None
    scheduled_time: datetime | None = None
    data: dict[str, Any] | None = None

    # In-process only: the value or exception a run produced. Never serialised.
    _result: Any = PrivateAttr(default=None)
    _exception: BaseException | None = PrivateAttr(default=None)
    # The run whose state this is, set by the SDK's engines: None for a state a user made.
    _run_id: UUID | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        if not self.name:
            self.name = default_name(self.type)

    @property
    def is_terminal(self) -> bool:
        return self.type.is_terminal

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def __str__(self) -> str:
        suffix = f" ({self.message})" if self.message else ""
        return f"{self.name}{suffix}"

    # In-process helpers (never serialised): what the SDK's engine attaches to a state.

    def result(self, raise_on_failure: bool = True) -> Any:
        """The value the run produced, as in the process that ran it.

        For Failed, Crashed and Cancelled states, raise the run's exception; with
        `raise_on_failure=False`, return what the state holds (the states a flow returned,
        the `data` it was made with), or the exception when it holds nothing else. A state
        read back from the server carries only a result reference in `data`; the SDK loads
        those (`baton.states.load_result`).
        """
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        # plain dict reads: `self._result` goes through pydantic's __getattr__ (four calls)
        exc, value = private["_exception"], private["_result"]
        if self.type in _FAILURE_TYPES:
            if exc is None:
                exc = RuntimeError(f"Run ended in state {self}")
                private["_exception"] = exc
            if raise_on_failure:
                raise exc
            return exc if value is None else value
        if exc is not None and not self.is_terminal:  # e.g. NotReady: it never ran
            if raise_on_failure:
                raise exc
            return exc
        return value

    def with_result(self, value: Any = None, exception: BaseException | None = None) -> State:
        """Attach the in-process value or exception of the run; returns the same state."""
        self._result = value
        self._exception = exception
        return self


def _post_init(state: State, context: Any, /) -> None:
    """What pydantic runs after validating a State, minus its generic private-attribute setup.

    That setup deep-copies each private default per instance and was a tenth of the tracker's
    CPU on a batch of task-run states; these two defaults are None. Same outcome:
    tests/unit/test_states.py holds it to the generic path.
    """
    _set_attribute(state, "__pydantic_private__", {"_result": None, "_exception": None, "_run_id": None})
    if not state.name:
        state.__dict__["name"] = default_name(state.type)
        state.__pydantic_fields_set__.add("name")


_set_attribute = object.__setattr__
# pydantic calls `model_post_init` by name after validation; this replaces its wrapped version
State.model_post_init = _post_init  # type: ignore[method-assign,assignment]


def _state(state_type: StateType, name: str | None, data: Any = None, **fields: Any) -> State:
    """A state; `data` is the in-process value the run ends with (an exception for a failure
    type), as `state.result()` gives it, never the stored `data` field (a result reference)."""
    state = State(type=state_type, name=name or default_name(state_type), **fields)
    if data is not None:
        if isinstance(data, BaseException) and state_type in _FAILURE_TYPES:
            state._exception = data
        else:
            state._result = data
    return state


# The constructors a flow or task may return to choose its end: `Completed(name="Skipped")`,
# `Failed(message="no data today", data=...)`. Each takes `name`, `message` and `data`.


def Scheduled(
    scheduled_time: datetime | None = None,
    message: str | None = None,
    name: str | None = None,
    data: Any = None,
) -> State:
    when = scheduled_time or utcnow()
    return _state(StateType.SCHEDULED, name, data, scheduled_time=when, message=message)


def Late(
    scheduled_time: datetime | None = None, message: str | None = None, name: str | None = None
) -> State:
    return Scheduled(scheduled_time, message, name=name or "Late")


def AwaitingRetry(delay_seconds: float = 0, message: str | None = None, name: str | None = None) -> State:
    return Scheduled(utcnow() + timedelta(seconds=delay_seconds), message, name=name or "AwaitingRetry")


def AwaitingConcurrencySlot(
    delay_seconds: float = 0, message: str | None = None, name: str | None = None
) -> State:
    when = utcnow() + timedelta(seconds=delay_seconds)
    return Scheduled(when, message, name=name or "AwaitingConcurrencySlot")


def Pending(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.PENDING, name, data, message=message)


def Running(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.RUNNING, name, data, message=message)


def Retrying(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.RUNNING, name or "Retrying", data, message=message)


def Completed(message: str | None = None, data: Any = None, name: str | None = None) -> State:
    return _state(StateType.COMPLETED, name, data, message=message)


def Cached(message: str | None = None, data: Any = None, name: str | None = None) -> State:
    return _state(StateType.COMPLETED, name or "Cached", data, message=message)


def Failed(message: str | None = None, data: Any = None, name: str | None = None) -> State:
    return _state(StateType.FAILED, name, data, message=message)


def TimedOut(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.FAILED, name or "TimedOut", data, message=message)


def Crashed(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.CRASHED, name, data, message=message)


def Cancelling(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.CANCELLING, name, data, message=message)


def Cancelled(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.CANCELLED, name, data, message=message)


def Paused(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.PAUSED, name, data, message=message)


def Suspended(message: str | None = None, name: str | None = None, data: Any = None) -> State:
    return _state(StateType.PAUSED, name or "Suspended", data, message=message)


class StateEntry(State):
    """A state in a run's history (`GET /api/flow_runs/{id}/states`), with the run's version
    after it: 1 for the first state, one more per accepted transition."""

    version: int


class Verdict(StrEnum):
    """The tracker's answer to a proposed transition."""

    ACCEPT = "ACCEPT"  # the proposed state is now the run's state
    REJECT = "REJECT"  # the run keeps (or was moved to) `state`; the proposer must follow it
    WAIT = "WAIT"  # propose again after `delay_seconds`
    ABORT = "ABORT"  # stop: the run is not yours (claimed elsewhere, cancelled, gone)


class TransitionResult(BatonModel):
    verdict: Verdict
    state: State | None = Field(
        default=None, description="The run's state after the decision (the accepted one on ACCEPT)."
    )
    state_version: int = 0
    reason: str | None = None
    delay_seconds: float | None = None
