"""Who may take a run, and when."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from baton_schemas.states import AwaitingConcurrencySlot, Cancelled, StateType

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


class StaleClaim:
    """A proposal made under an old claim (a process of a worker that lost the run) is dropped."""

    FROM_STATES: ClassVar[frozenset[StateType]] = ALL_TYPES
    TO_STATES: ClassVar[frozenset[StateType]] = ALL_TYPES

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        if proposal.claim_id is None or proposal.claim_id == run.claim_id:
            return None
        return Decision.abort("the run has been claimed again since: this claim is stale")


class ConcurrencyLimits:
    """A claim that would exceed a pool, queue or deployment limit waits for a slot.

    The run goes back to Scheduled (AwaitingConcurrencySlot) and is dispatched again shortly;
    a deployment whose collision strategy is cancel-new cancels the new run instead.
    """

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.SCHEDULED})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.PENDING})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        full = [limit for limit in run.limits if limit.full]
        if not full:
            return None
        reason = "; ".join(f"{f.what} is at its limit of {f.limit}" for f in full)
        if any(f.cancel_new for f in full):
            return Decision.abort(reason, write=Cancelled(message=f"not started: {reason}"))
        retry = AwaitingConcurrencySlot(run.slot_wait_seconds, message=reason)
        return Decision.wait(reason, run.slot_wait_seconds, write=retry)
