"""Orchestration rules for flow-run transitions, in the order they are consulted.

Each rule looks at transitions from one of its FROM_STATES to one of its TO_STATES and either
decides (a Decision) or passes (None). The first decision wins; if no rule decides, the proposal
is accepted. Rules are pure: they read a snapshot of the run and the proposal, never the database.
"""

from __future__ import annotations

from datetime import datetime

from ._base import ALL_TYPES, Decision, Limit, Proposal, Rule, RunSnapshot
from .claims import ConcurrencyLimits, OneClaimPerRun, StaleClaim, WaitForScheduledTime
from .lifecycle import CancellingEndsCancelled, LateFinalStateWins, NoDoubleStart, TerminalStaysTerminal
from .retries import RetryCrashedRuns, RetryFailedRuns

POLICY: tuple[Rule, ...] = (
    StaleClaim(),
    OneClaimPerRun(),
    LateFinalStateWins(),
    TerminalStaysTerminal(),
    CancellingEndsCancelled(),
    WaitForScheduledTime(),
    ConcurrencyLimits(),
    NoDoubleStart(),
    RetryFailedRuns(),
    RetryCrashedRuns(),
)


def decide(run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision:
    if proposal.force:
        return Decision.accept(proposal.state)
    initial, proposed = run.state_type, proposal.state.type
    for rule in POLICY:
        if initial in rule.FROM_STATES and proposed in rule.TO_STATES:
            decision = rule.decide(run, proposal, now)
            if decision is not None:
                return decision
    return Decision.accept(proposal.state)


__all__ = ["ALL_TYPES", "POLICY", "Decision", "Limit", "Proposal", "Rule", "RunSnapshot", "decide"]
