"""Apply the policy to a proposed flow-run transition, under the run's row lock.

The one transition function: the tracker's RPC handler, the API's `set_state` and the reaper
all call `propose_flow_run_state`. It returns the verdict and the outbox rows to send once the
caller's transaction has committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from baton_schemas import utcnow
from baton_schemas.envelopes import Claim, ProposeState
from baton_schemas.states import State, StateType, TransitionResult, Verdict

from ..broker.messages import state_change_message
from ..broker.outbox import Outbox, OutboxMessage, OutboxRow
from ..db.flow_runs import flow_run_change, insert_state, read_flow_run
from .rules import Decision, Proposal, RunSnapshot, decide

# States in which a run has an owner, a lease and therefore the reaper's attention.
OWNED_TYPES = frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLING})


class RunNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    result: TransitionResult
    outbox: list[OutboxRow]


async def _replay(conn: asyncpg.Connection[Any], transition_id: uuid.UUID) -> TransitionResult | None:
    """The answer already given to this transition id, if it was one that wrote a state."""
    row = await conn.fetchrow(
        "SELECT verdict, version, state FROM states WHERE transition_id = $1", transition_id
    )
    if row is None:
        return None
    return TransitionResult(
        verdict=Verdict(row["verdict"]),
        state=State.model_validate(row["state"]),
        state_version=row["version"],
    )


async def _write(
    conn: asyncpg.Connection[Any],
    row: asyncpg.Record,
    state: State,
    *,
    previous: State,
    version: int,
    transition_id: uuid.UUID | None,
    verdict: Verdict,
    claim: Claim | None,
    default_lease: float,
) -> OutboxMessage:
    now = utcnow()
    worker_id, claim_id, lease = row["worker_id"], row["claim_id"], None
    if state.type in OWNED_TYPES:
        lease_seconds = claim.lease_seconds if claim else default_lease
        lease = now + timedelta(seconds=lease_seconds)
        if state.type is StateType.PENDING and claim is not None:
            worker_id, claim_id = claim.worker_id, transition_id
    else:
        worker_id = claim_id = None
    entering_running = state.type is StateType.RUNNING
    await conn.execute(
        """UPDATE flow_runs SET
               state = $2, state_type = $3, state_name = $4, state_version = $5,
               next_scheduled_time = $6,
               run_count = run_count + $7,
               start_time = CASE WHEN $7 = 1 THEN COALESCE(start_time, $8) ELSE start_time END,
               end_time = $9,
               worker_id = $10, claim_id = $11, lease_expires_at = $12, updated = now()
           WHERE id = $1""",
        row["id"],
        state.model_dump(mode="json"),
        state.type.value,
        state.name,
        version,
        state.scheduled_time if state.type is StateType.SCHEDULED else None,
        1 if entering_running else 0,
        state.timestamp,
        state.timestamp if state.is_terminal else None,
        worker_id,
        claim_id,
        lease,
    )
    await insert_state(
        conn,
        state,
        version=version,
        flow_run_id=row["id"],
        transition_id=transition_id,
        verdict=verdict.value,
    )
    return state_change_message(flow_run_change(row, state, version=version, previous=previous))


async def propose_flow_run_state(
    conn: asyncpg.Connection[Any],
    proposal: ProposeState,
    *,
    default_lease_seconds: float = 30.0,
    now: datetime | None = None,
) -> Outcome:
    """Decide on a proposal and persist its effects. Raises RunNotFound."""
    async with conn.transaction():
        if (replayed := await _replay(conn, proposal.transition_id)) is not None:
            return Outcome(replayed, [])
        row = await read_flow_run(conn, proposal.flow_run_id, lock=True)
        if row is None:
            raise RunNotFound(f"flow run {proposal.flow_run_id} does not exist")
        current = State.model_validate(row["state"])
        snapshot = RunSnapshot(
            state=current,
            state_version=row["state_version"],
            run_count=row["run_count"],
            retries=row["retries"],
            retry_delay_seconds=row["retry_delay_seconds"],
        )
        decision: Decision = decide(snapshot, Proposal(proposal.state, force=proposal.force), now or utcnow())
        if decision.write is None:
            return Outcome(
                TransitionResult(
                    verdict=decision.verdict,
                    state=current,
                    state_version=row["state_version"],
                    reason=decision.reason,
                    delay_seconds=decision.delay_seconds,
                ),
                [],
            )
        version = row["state_version"] + 1
        messages = [
            await _write(
                conn,
                row,
                decision.write,
                previous=current,
                version=version,
                transition_id=proposal.transition_id,
                verdict=decision.verdict,
                claim=proposal.claim,
                default_lease=default_lease_seconds,
            )
        ]
        final = decision.write
        if decision.follow_up is not None:
            version += 1
            messages.append(
                await _write(
                    conn,
                    row,
                    decision.follow_up,
                    previous=decision.write,
                    version=version,
                    transition_id=None,
                    verdict=decision.verdict,
                    claim=None,
                    default_lease=default_lease_seconds,
                )
            )
            final = decision.follow_up
        rows = await Outbox.add(conn, messages)
        return Outcome(
            TransitionResult(
                verdict=decision.verdict,
                state=final,
                state_version=version,
                reason=decision.reason,
                delay_seconds=decision.delay_seconds,
            ),
            rows,
        )
