"""The shapes every rule shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol
from uuid import UUID

from baton_schemas.states import State, StateType, Verdict

ALL_TYPES = frozenset(StateType)


@dataclass(frozen=True, slots=True)
class Limit:
    """One concurrency limit that applies to a run, and how many runs hold a slot of it now."""

    what: str  # "work pool 'local'", "deployment 'etl/prod'", ...
    limit: int
    active: int
    cancel_new: bool = False

    @property
    def full(self) -> bool:
        return self.active >= self.limit


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """What the rules may know about a run: its state, retry bookkeeping, claim and limits."""

    state: State
    state_version: int
    run_count: int
    retries: int
    retry_delay_seconds: float
    claim_id: UUID | None = None
    limits: tuple[Limit, ...] = ()
    slot_wait_seconds: float = 1.0
    reaped_version: int | None = None  # the version of the Crashed the reaper wrote, if it did

    @property
    def reaped(self) -> bool:
        """Its state is the reaper's Crashed, or the retry scheduled right after it."""
        if self.reaped_version is None:
            return False
        if self.state.type is StateType.CRASHED:
            return self.state_version == self.reaped_version
        return self.state.is_scheduled() and self.state_version == self.reaped_version + 1

    @property
    def state_type(self) -> StateType:
        return self.state.type


@dataclass(frozen=True, slots=True)
class Proposal:
    state: State
    force: bool = False
    claim_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict, the state to write (None: write nothing), and any state written right after."""

    verdict: Verdict
    write: State | None = None
    follow_up: State | None = None
    reason: str | None = None
    delay_seconds: float | None = None

    @classmethod
    def accept(cls, state: State, *, follow_up: State | None = None) -> Decision:
        return cls(Verdict.ACCEPT, write=state, follow_up=follow_up)

    @classmethod
    def reject(cls, reason: str, *, write: State | None = None) -> Decision:
        return cls(Verdict.REJECT, write=write, reason=reason)

    @classmethod
    def wait(cls, reason: str, delay_seconds: float, *, write: State | None = None) -> Decision:
        return cls(Verdict.WAIT, write=write, reason=reason, delay_seconds=delay_seconds)

    @classmethod
    def abort(cls, reason: str, *, write: State | None = None) -> Decision:
        return cls(Verdict.ABORT, write=write, reason=reason)


class Rule(Protocol):
    FROM_STATES: ClassVar[frozenset[StateType]]
    TO_STATES: ClassVar[frozenset[StateType]]

    def decide(self, run: RunSnapshot, proposal: Proposal, now: datetime) -> Decision | None: ...
