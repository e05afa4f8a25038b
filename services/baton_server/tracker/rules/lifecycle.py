"""Where a run may go once it has started or ended."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from baton_schemas.states import TERMINAL_TYPES, Cancelled, StateType

from ._base import ALL_TYPES, Decision, Proposal, RunSnapshot


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
