"""Who may take a run, and when."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from baton_schemas.states import StateType

from ._base import ALL_TYPES, Decision, Proposal, RunSnapshot

# A run may start this early: clocks differ a little between machines.
SCHEDULE_TOLERANCE_SECONDS = 0.5


class OneClaimPerRun:
    """Scheduled -> Pending is accepted once; any other claim is told to drop the run."""

    FROM_STATES: ClassVar[frozenset[StateType]] = ALL_TYPES - {StateType.SCHEDULED}
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.PENDING})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        return Decision.abort(f"run is {run.state.name}, not Scheduled: it is not yours to claim")


class WaitForScheduledTime:
    """A run does not start before its scheduled time."""

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.SCHEDULED})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.PENDING, StateType.RUNNING})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        scheduled = run.state.scheduled_time
        if scheduled is None:
            return None
        delay = (scheduled - now).total_seconds()
        if delay > SCHEDULE_TOLERANCE_SECONDS:
            return Decision.wait(f"scheduled for {scheduled.isoformat()}", delay)
        return None
