"""A deployment run claimed by a worker, as its engine sees it: proposals under the claim, a
retry handed back to the server, a cancellation found on the way (pure: a recording reporter
plays the server)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from baton import flow
from baton._flow_engine import run_existing_flow_run
from baton._runtime import get_runtime
from baton_schemas import utcnow
from baton_schemas.envelopes import ProposeState
from baton_schemas.runs import FlowRun
from baton_schemas.states import (
    AwaitingRetry,
    Cancelling,
    Pending,
    State,
    StateType,
    TransitionResult,
    Verdict,
)

from .conftest import RecordingReporter

calls: list[str] = []


@flow
def counted(fail: bool = False) -> str:
    calls.append("run")
    if fail:
        raise ValueError("nope")
    return "done"


def _existing(**parameters: Any) -> FlowRun:
    now = utcnow()
    return FlowRun(
        id=uuid.uuid4(),
        name="claimed-run",
        flow_id=uuid.uuid4(),
        flow_name="counted",
        parameters=parameters,
        state=Pending(),
        state_version=2,
        created=now,
        updated=now,
    )


def _accept(proposal: ProposeState) -> TransitionResult:
    return TransitionResult(verdict=Verdict.ACCEPT, state=proposal.state)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_every_proposal_of_a_claimed_run_carries_the_claim(reporter: RecordingReporter) -> None:
    claim = uuid.uuid4()
    reporter.decide = _accept
    state = run_existing_flow_run(counted, _existing(), get_runtime(), claim_id=claim)
    assert isinstance(state, State) and state.is_completed()
    assert [p.claim_id for p in reporter.proposals] == [claim, claim]


def test_the_claim_comes_from_the_environment_set_by_the_worker(
    reporter: RecordingReporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = uuid.uuid4()
    monkeypatch.setenv("BATON_CLAIM_ID", str(claim))
    reporter.decide = _accept
    run_existing_flow_run(counted, _existing(), get_runtime())
    assert {p.claim_id for p in reporter.proposals} == {claim}


def test_a_run_of_its_own_never_proposes_under_a_claim(
    reporter: RecordingReporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_CLAIM_ID", str(uuid.uuid4()))  # e.g. a flow called inside a deployed one
    counted()
    assert {p.claim_id for p in reporter.proposals} == {None}


def test_a_retry_of_a_claimed_run_is_handed_back_to_the_server(reporter: RecordingReporter) -> None:
    def server(proposal: ProposeState) -> TransitionResult:
        if proposal.state.type is StateType.FAILED:
            return TransitionResult(verdict=Verdict.REJECT, state=AwaitingRetry(delay_seconds=3600))
        return _accept(proposal)

    reporter.decide = server
    state = run_existing_flow_run(counted, _existing(fail=True), get_runtime(), claim_id=uuid.uuid4())
    assert isinstance(state, State)
    assert state.name == "AwaitingRetry"  # it stops: the server dispatches the retry to any worker
    assert calls == ["run"]


def test_a_run_found_cancelling_ends_cancelled(reporter: RecordingReporter) -> None:
    def server(proposal: ProposeState) -> TransitionResult:
        if proposal.state.type is StateType.RUNNING:
            return TransitionResult(verdict=Verdict.REJECT, state=Cancelling(message="stop it"))
        return _accept(proposal)

    reporter.decide = server
    state = run_existing_flow_run(counted, _existing(), get_runtime(), claim_id=uuid.uuid4())
    assert isinstance(state, State)
    assert (state.type, state.message) == (StateType.CANCELLED, "stop it")
    assert calls == []  # never started
    assert reporter.proposals[-1].state.type is StateType.CANCELLED


def test_a_run_cancelled_while_it_ran_ends_cancelled(reporter: RecordingReporter) -> None:
    def server(proposal: ProposeState) -> TransitionResult:
        if proposal.state.type is StateType.COMPLETED:
            return TransitionResult(verdict=Verdict.REJECT, state=Cancelling(message="too late"))
        return _accept(proposal)

    reporter.decide = server
    state = run_existing_flow_run(counted, _existing(), get_runtime(), claim_id=uuid.uuid4())
    assert isinstance(state, State) and state.type is StateType.CANCELLED
