"""Run states: the models and constructors of `baton_schemas.states`, and result helpers.

A task or flow may return one of these to choose its final state:

    from baton.states import Completed, Failed
    return Failed(message="no data today")
"""

from __future__ import annotations

from typing import Any

from baton_schemas.states import (
    TERMINAL_TYPES,
    AwaitingConcurrencySlot,
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
    Suspended,
    TimedOut,
    TransitionResult,
    Verdict,
)

from ._results import ResultStore, default_store, is_result_ref, load


def load_result(state: State, store: ResultStore | None = None) -> Any:
    """The value of a completed state: in memory if this process ran it, else read back from
    the result store its `data` reference points to (the runtime's store by default)."""
    if state._result is not None or not is_result_ref(state.data):
        return state.result()
    state.result()  # raise for failed states
    assert state.data is not None
    return load(state.data, store or default_store())


__all__ = [
    "TERMINAL_TYPES",
    "AwaitingConcurrencySlot",
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "Suspended",
    "TimedOut",
    "TransitionResult",
    "Verdict",
    "load_result",
]
