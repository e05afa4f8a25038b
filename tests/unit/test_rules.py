"""The transition policy as pure logic: each rule's verdict for a snapshot and a proposal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from baton_schemas.states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    Verdict,
)
from baton_server.tracker.rules import Proposal, RunSnapshot, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(state: State, *, run_count: int = 0, retries: int = 0, delay: float = 0) -> RunSnapshot:
    return RunSnapshot(state, 1, run_count, retries, delay)


def test_first_claim_is_accepted_and_a_second_is_aborted() -> None:
    assert decide(snapshot(Scheduled(NOW)), Proposal(Pending()), NOW).verdict is Verdict.ACCEPT
    assert decide(snapshot(Pending()), Proposal(Pending()), NOW).verdict is Verdict.ABORT
    assert decide(snapshot(Running()), Proposal(Pending()), NOW).verdict is Verdict.ABORT


def test_claiming_a_cancelled_run_aborts() -> None:
    assert decide(snapshot(Cancelled()), Proposal(Pending()), NOW).verdict is Verdict.ABORT


@pytest.mark.parametrize("ended", [Completed(), Failed(), Cancelled(), Crashed()])
@pytest.mark.parametrize("target", [Running(), Scheduled(), Completed(), Failed()])
def test_terminal_states_stay_terminal(ended: State, target: State) -> None:
    decision = decide(snapshot(ended), Proposal(target), NOW)
    assert decision.verdict is Verdict.REJECT
    assert decision.write is None


def test_force_bypasses_the_rules() -> None:
    assert decide(snapshot(Completed()), Proposal(Scheduled(), force=True), NOW).verdict is Verdict.ACCEPT


def test_a_run_waits_for_its_scheduled_time() -> None:
    later = Scheduled(NOW + timedelta(seconds=30))
    decision = decide(snapshot(later), Proposal(Pending()), NOW)
    assert decision.verdict is Verdict.WAIT
    assert decision.delay_seconds == pytest.approx(30)
    assert decide(snapshot(later), Proposal(Pending()), NOW + timedelta(seconds=30)).verdict is Verdict.ACCEPT


def test_failure_with_retries_left_becomes_awaiting_retry() -> None:
    decision = decide(snapshot(Running(), run_count=1, retries=2, delay=5), Proposal(Failed("boom")), NOW)
    assert decision.verdict is Verdict.REJECT
    assert decision.write is not None
    assert decision.write.type is StateType.SCHEDULED
    assert decision.write.name == "AwaitingRetry"
    assert decision.write.scheduled_time == NOW + timedelta(seconds=5)
    assert "boom" in (decision.write.message or "")


def test_failure_without_retries_left_is_accepted() -> None:
    decision = decide(snapshot(Running(), run_count=3, retries=2), Proposal(Failed()), NOW)
    assert decision.verdict is Verdict.ACCEPT
    assert decision.write is not None and decision.write.type is StateType.FAILED


def test_crash_with_retries_left_is_recorded_then_rescheduled() -> None:
    decision = decide(snapshot(Running(), run_count=1, retries=1), Proposal(Crashed()), NOW)
    assert decision.verdict is Verdict.ACCEPT
    assert decision.write is not None and decision.write.type is StateType.CRASHED
    assert decision.follow_up is not None and decision.follow_up.name == "AwaitingRetry"


def test_cancelling_ends_only_in_cancelled() -> None:
    assert decide(snapshot(Cancelling()), Proposal(Completed()), NOW).verdict is Verdict.REJECT
    assert decide(snapshot(Cancelling()), Proposal(Cancelled()), NOW).verdict is Verdict.ACCEPT
    crashed = decide(snapshot(Cancelling()), Proposal(Crashed("gone")), NOW)
    assert crashed.verdict is Verdict.ACCEPT
    assert crashed.write is not None and crashed.write.type is StateType.CANCELLED


def test_running_twice_is_rejected() -> None:
    assert decide(snapshot(Running()), Proposal(Running()), NOW).verdict is Verdict.REJECT


def reaped(state: State, version: int, reaped_version: int) -> RunSnapshot:
    return RunSnapshot(state, version, 1, 1, 0, reaped_version=reaped_version)


@pytest.mark.parametrize("final", [Completed(), Cancelled()])
def test_a_late_final_state_wins_over_the_reapers_crash(final: State) -> None:
    assert decide(reaped(Crashed(), 4, 4), Proposal(final), NOW).verdict is Verdict.ACCEPT
    awaiting = Scheduled(NOW, name="AwaitingRetry")
    decision = decide(reaped(awaiting, 5, 4), Proposal(final), NOW)
    assert decision.verdict is Verdict.ACCEPT and decision.write is final


def test_a_late_failure_leaves_the_scheduled_retry_standing() -> None:
    awaiting = Scheduled(NOW, name="AwaitingRetry")
    decision = decide(reaped(awaiting, 5, 4), Proposal(Failed()), NOW)
    assert decision.verdict is Verdict.REJECT and decision.write is None


def test_a_crash_not_written_by_the_reaper_stays_terminal() -> None:
    assert decide(snapshot(Crashed()), Proposal(Completed()), NOW).verdict is Verdict.REJECT
    # the reaped attempt was followed by another: its late report changes nothing
    assert decide(reaped(Crashed(), 9, 4), Proposal(Completed()), NOW).verdict is Verdict.REJECT
