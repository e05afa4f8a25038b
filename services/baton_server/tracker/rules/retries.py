"""Flow retries: a failed or crashed attempt is rescheduled while retries remain."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from baton_schemas.states import Scheduled, State, StateType

from ._base import Decision, Proposal, RunSnapshot


def _retries_left(run: RunSnapshot) -> bool:
    # run_count counts attempts that reached Running; `retries` allows that many more.
    return 1 <= run.run_count <= run.retries


def _awaiting_retry(run: RunSnapshot, ended: State, now: datetime) -> State:
    reason = f": {ended.message}" if ended.message else ""
    return Scheduled(
        scheduled_time=now + timedelta(seconds=run.retry_delay_seconds),
        message=f"retry {run.run_count} of {run.retries} after {ended.name}{reason}",
        name="AwaitingRetry",
    )


class RetryFailedRuns:
    """Failed with retries left: the run is rescheduled instead (REJECT, state AwaitingRetry)."""

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.RUNNING})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.FAILED})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        if not _retries_left(run):
            return None
        retry = _awaiting_retry(run, proposal.state, now)
        return Decision.reject(retry.message or "retrying", write=retry)


class RetryCrashedRuns:
    """Crashed with retries left: the crash is recorded, then the run is rescheduled."""

    FROM_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.PENDING, StateType.RUNNING})
    TO_STATES: ClassVar[frozenset[StateType]] = frozenset({StateType.CRASHED})

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None:
        if not _retries_left(run):
            return None
        return Decision.accept(proposal.state, follow_up=_awaiting_retry(run, proposal.state, now))
