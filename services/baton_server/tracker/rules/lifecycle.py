"""Where a run may go once it has started or ended."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from baton_schemas.states import TERMINAL_TYPES, Cancelled, StateType

from ._base import ALL_TYPES, Decision, Proposal, RunSnapshot


class LateFinalStateWins:
    """A final state that arrives late from the run's own claim wins over the reaper's Crashed.

    The reaper only saw a lease that nobody renewed, which an outage of the broker, the tracker
    or the worker also causes; the run's own report of how it ended is better evidence. It wins
    while the Crashed has not led to a new attempt: the run is still Crashed, or its retry is
    scheduled (AwaitingRetry) and not claimed yet (a claim replaces the run's claim id, and
    StaleClaim, consulted first, turns away the old claim's proposals). What the Crashed caused:
    - it stays in the history, and its `baton.flow-run.Crashed` event has been published; the
      final state is written after it, with its own event;
    - a scheduled retry is superseded by the final state, so its dispatch is dropped by whoever
      receives it (the run is no longer Scheduled: OneClaimPerRun);
    - a late Failed with retries left does not retry a second time: the scheduled retry stands;
    - `on_crashed` hooks: the reaper runs no flow code, so none ran for its Crashed (the run's
      process was alive and ran its own final state's hooks: `on_completion`, `on_failure`).
      Hooks run where the flow's code is: the engine, or the worker for a process it ended.
    """

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.CRASHED, StateType.SCHEDULED})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset(
        {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED}
    )

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        if not run.reaped:
            return None
        if run.state_type is StateType.SCHEDULED and proposal.state.type is StateType.FAILED:
            return Decision.reject("the run failed after its lease expired; its retry stands")
        return Decision.accept(proposal.state)


class TerminalStaysTerminal:
    """An ended run stays ended; only a retry (made by the server, or forced) reopens it."""

    FROM_STATES: ClassVar[frozenset[StateType]] = TERMINAL_TYPES
    TO_STATES: ClassVar[frozenset[StateType]] = ALL_TYPES

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        return Decision.reject(f"run already ended {run.state.name}")


class CancellingEndsCancelled:
    """A run being cancelled ends Cancelled: a crash while cancelling counts as the cancellation."""

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.CANCELLING})
    TO_STATES: ClassVar[frozenset[StateType]] = ALL_TYPES - {StateType.CANCELLED}

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        if proposal.state.type is StateType.CRASHED:
            message = f"cancelled; the run ended while cancelling: {proposal.state.message or ''}"
            return Decision.accept(Cancelled(message=message.rstrip(": ")))
        return Decision.reject("run is being cancelled; it can only end Cancelled")


class NoDoubleStart:
    """Running -> Running is a second start of the same attempt."""

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.RUNNING})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.RUNNING})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        return Decision.reject("run is already running")
