"""Apply the policy to a proposed flow-run transition.

The one transition function: the tracker's RPC handler, the API's `set_state` and the reaper
all call `propose_flow_run_state`. It returns the verdict and the outbox rows to send once the
write has committed.

Concurrency is optimistic: the run is read (with any earlier answer to the same transition id),
the rules decide, and the write is one statement that updates the run only if its
`state_version` is still the one read, inserting the history row and the outbox row in the same
statement. Of any number of racing proposals exactly one write succeeds; the others read again
and are decided against the new state. This holds no row lock across a round trip and costs two
round trips for a transition that writes, one for one that doesn't.

With a `RunCache` (the tracker keeps one) a run this process wrote last is decided against the
row as written, and a transition that writes costs one round trip: the write is still
conditional on `state_version`, so a row changed elsewhere fails it and is read afresh. Answers
that write nothing always come from a fresh read, which is where a repeated transition id is
recognised.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

import asyncpg
import orjson

from baton import _tracing
from baton_schemas import utcnow
from baton_schemas.envelopes import Claim, ProposeState
from baton_schemas.pauses import keeps_owner
from baton_schemas.states import State, StateType, TransitionResult, Verdict

from ..broker.messages import flow_run_change_message, serialise_state
from ..broker.outbox import OutboxRow
from ..db.on_demand import OnDemand, connection
from ..db.rows import FLOW_RUN_COLUMNS
from ..db.run_cache import RunCache
from ..db.types import Connection
from ..events.state_events import flow_run_event
from ..metrics import TRANSITION_SECONDS, TRANSITIONS
from .rules import Decision, Limit, Proposal, RunSnapshot, decide
from .write_batch import WRITE, WriteBatch

# States in which a run has an owner, a lease and therefore the reaper's attention; so has a
# Paused run whose process waits for it to be resumed (not a Suspended one: its process ended).
OWNED_TYPES = frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLING})


def _owned(state: State) -> bool:
    return state.type in OWNED_TYPES or keeps_owner(state)


def _starts_attempt(state: State, previous: State) -> bool:
    """Running counts an attempt, except a paused run's resuming: the same attempt goes on."""
    return state.type is StateType.RUNNING and previous.type is not StateType.PAUSED


class RunNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    result: TransitionResult
    outbox: list[OutboxRow]
    previous: StateType | None = None  # the run's state type it was decided against (None: replayed)


_READ = f"""
    SELECT {FLOW_RUN_COLUMNS},
        (SELECT jsonb_build_object('verdict', s.verdict, 'version', s.version, 'state', s.state)
         FROM states s WHERE s.transition_id = $2) AS replay
    FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
    WHERE fr.id = $1"""

_REPLAY = """SELECT jsonb_build_object('verdict', verdict, 'version', version, 'state', state)
             FROM states WHERE transition_id = $1"""


def _replayed(value: dict[str, Any] | None) -> TransitionResult | None:
    if value is None:
        return None
    return TransitionResult(
        verdict=Verdict(value["verdict"]),
        state=State.model_validate(value["state"]),
        state_version=value["version"],
    )


@dataclass(frozen=True, slots=True)
class _Written:
    outbox: OutboxRow
    event: OutboxRow  # the transition's event, sent after its state change
    before: Mapping[str, Any]
    changes: dict[str, Any]

    @property
    def row(self) -> dict[str, Any]:
        """The run as it is now, for the cache (built only when one keeps it)."""
        return {**self.before, **self.changes}


async def _write(
    conn: Connection | OnDemand,
    row: Mapping[str, Any],
    state: State,
    *,
    previous: State,
    version: int,
    transition_id: uuid.UUID | None,
    verdict: Verdict,
    claim: Claim | None,
    default_lease: float,
    batch: WriteBatch | None = None,
) -> _Written | None:
    """Write `state` as version `version`; None if the run moved on since it was read. With
    `batch`, the write may share its statement with other runs' writes."""
    now = utcnow()
    worker_id, claim_id, lease = row["worker_id"], row["claim_id"], None
    lease_seconds = row["lease_seconds"]
    if _owned(state):
        if claim is not None:
            lease_seconds = claim.lease_seconds
        lease = now + timedelta(seconds=lease_seconds or default_lease)
        if state.type is StateType.PENDING and claim is not None:
            worker_id, claim_id = claim.worker_id, transition_id
    else:
        worker_id = claim_id = lease_seconds = None
    # the state serialised once: the run's row, its history row and its message
    state_json = serialise_state(state)
    message = flow_run_change_message(row, state, state_json, version=version, previous=previous)
    event = flow_run_event(row, state, version=version, previous=previous)
    args = (
        row["id"],
        orjson.Fragment(state_json),  # the jsonb codec writes it as it is
        state.type.value,
        state.name,
        version,
        state.scheduled_time if state.type is StateType.SCHEDULED else None,
        1 if _starts_attempt(state, previous) else 0,
        state.timestamp,
        state.timestamp if state.is_terminal else None,
        worker_id,
        claim_id,
        lease,
        state.id,
        transition_id,
        verdict.value,
        message.exchange,
        message.routing_key,
        message.body,
        message.mandatory,
        lease_seconds,
        event.routing_key,
        event.body,
    )
    if batch is not None:
        written = await batch.write(conn, row["id"], args)
    else:
        written = await (await connection(conn)).fetchrow(WRITE, *args)
    if written is None:
        return None
    changes = {
        # the model, not its JSON as a read would give it: the next transition of this run,
        # decided against the cached row, need not parse it again
        "state": state,
        "state_type": state.type.value,
        "state_name": state.name,
        "state_version": version,
        "run_count": row["run_count"] + (1 if _starts_attempt(state, previous) else 0),
        "worker_id": worker_id,
        "claim_id": claim_id,
        "lease_seconds": lease_seconds,
        "replay": None,
    }
    return _Written(
        OutboxRow(written["id"], message, after=tuple(written["after"])),
        OutboxRow(written["event_row"], event),
        row,
        changes,
    )


async def propose_flow_run_state(
    conn: Connection | OnDemand,
    proposal: ProposeState,
    *,
    default_lease_seconds: float = 30.0,
    slot_wait_seconds: float = 1.0,
    now: datetime | None = None,
    cache: RunCache | None = None,
    batch: WriteBatch | None = None,
    traceparent: str | None = None,
) -> Outcome:
    """Decide on a proposal and persist its effects. Raises RunNotFound.

    The same transition id always gets the answer it got first: an answer without a write is
    only given after a fresh read has searched the history for the id, and a state written
    under an id is unique, so two copies of one proposal racing each other cannot both write
    (the loser is answered from the history).

    Traces on, the transition is a span: a child of `traceparent` (the proposer's span, from
    its message's headers) if given, else of the current span (an HTTP request's).
    """
    proposed = _propose_counted(conn, proposal, default_lease_seconds, now, slot_wait_seconds, cache, batch)
    if not _tracing.enabled():  # the one check a transition pays when traces are off
        return await proposed
    return await _traced(proposed, proposal, traceparent)


async def _traced(
    proposed: Coroutine[Any, Any, Outcome], proposal: ProposeState, traceparent: str | None
) -> Outcome:
    with _tracing.span(
        f"transition {proposal.state.name}",
        parent=traceparent,
        attributes={"baton.flow_run.id": proposal.flow_run_id, "baton.state.to": proposal.state.type.value},
    ) as span:
        outcome = await proposed
        result = outcome.result
        span.set_attribute("baton.transition.verdict", result.verdict.value)
        span.set_attribute("baton.state.from", outcome.previous.value if outcome.previous else "")
        if result.state is not None:
            span.set_attribute("baton.state.result", result.state.type.value)
        if outcome.previous is None:
            span.set_attribute("baton.transition.replayed", True)
        return outcome


async def _propose_counted(
    conn: Connection | OnDemand,
    proposal: ProposeState,
    default_lease_seconds: float,
    now: datetime | None,
    slot_wait_seconds: float,
    cache: RunCache | None,
    batch: WriteBatch | None,
) -> Outcome:
    started = time.perf_counter()
    try:
        outcome = await _propose(conn, proposal, default_lease_seconds, now, slot_wait_seconds, cache, batch)
    except asyncpg.UniqueViolationError:
        # an identical proposal committed first: answer as it was answered
        replayed = _replayed(await (await connection(conn)).fetchval(_REPLAY, proposal.transition_id))
        if replayed is None:
            raise
        outcome = Outcome(replayed, [])
    TRANSITION_SECONDS.observe(time.perf_counter() - started)
    _counted(proposal.state.type, outcome.result.verdict).inc()
    return outcome


@cache
def _counted(state: StateType, verdict: Verdict) -> Any:
    """The transitions counter of one state type and verdict (a few dozen at most): looked up
    once, not through `labels()` and its lock for every transition."""
    return TRANSITIONS.labels(state.value, verdict.value)


class _Moved(Exception):
    """The run changed between read and write: decide again."""


async def _propose(
    conn: Connection | OnDemand,
    proposal: ProposeState,
    default_lease_seconds: float,
    now: datetime | None,
    slot_wait_seconds: float,
    cache: RunCache | None,
    batch: WriteBatch | None,
) -> Outcome:
    while True:
        try:
            return await _attempt(conn, proposal, default_lease_seconds, now, slot_wait_seconds, cache, batch)
        except _Moved:
            if cache is not None:
                cache.forget(proposal.flow_run_id)
            continue


_LIMITS = """
    SELECT fr.work_pool_name, fr.work_queue_name, fr.deployment_id,
           p.concurrency_limit AS pool_limit, q.concurrency_limit AS queue_limit,
           d.concurrency_limit AS deployment_limit, d.collision_strategy, d.name AS deployment_name
    FROM flow_runs fr
    LEFT JOIN work_pools p ON p.name = fr.work_pool_name
    LEFT JOIN work_queues q ON q.pool_id = p.id AND q.name = fr.work_queue_name
    LEFT JOIN deployments d ON d.id = fr.deployment_id
    WHERE fr.id = $1"""

_ACTIVE = """
    SELECT count(*) FILTER (WHERE work_pool_name = $2) AS pool,
           count(*) FILTER (WHERE work_pool_name = $2 AND work_queue_name = $3) AS queue,
           count(*) FILTER (WHERE deployment_id = $4) AS deployment
    FROM flow_runs
    WHERE state_type IN ('PENDING', 'RUNNING', 'CANCELLING') AND id <> $1
      AND (work_pool_name = $2 OR deployment_id = $4)"""


def _is_claim(row: Mapping[str, Any], proposal: ProposeState) -> bool:
    return (
        proposal.state.type is StateType.PENDING
        and row["state_type"] == StateType.SCHEDULED.value
        and (row["work_pool_name"] is not None or row["deployment_id"] is not None)
    )


async def _hold_limits(conn: Connection, run_id: uuid.UUID) -> tuple[Limit, ...]:
    """The limits that apply to a run, with their slots counted while holding them.

    Inside the caller's transaction: a transaction-level advisory lock per limited pool, queue
    and deployment makes concurrent claims on the same limit count one after another.
    """
    row = await conn.fetchrow(_LIMITS, run_id)
    if row is None:
        return ()
    keys = []
    if row["pool_limit"] is not None:
        keys.append(f"pool:{row['work_pool_name']}")
    if row["queue_limit"] is not None:
        keys.append(f"queue:{row['work_pool_name']}:{row['work_queue_name']}")
    if row["deployment_limit"] is not None:
        keys.append(f"deployment:{row['deployment_id']}")
    if not keys:
        return ()
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k ORDER BY k",
        sorted(keys),
    )
    active = await conn.fetchrow(
        _ACTIVE, run_id, row["work_pool_name"], row["work_queue_name"], row["deployment_id"]
    )
    assert active is not None
    limits = []
    if row["pool_limit"] is not None:
        limits.append(Limit(f"work pool {row['work_pool_name']!r}", row["pool_limit"], active["pool"]))
    if row["queue_limit"] is not None:
        what = f"work queue {row['work_pool_name']}/{row['work_queue_name']}"
        limits.append(Limit(what, row["queue_limit"], active["queue"]))
    if row["deployment_limit"] is not None:
        limits.append(
            Limit(
                f"deployment {row['deployment_name']!r}",
                row["deployment_limit"],
                active["deployment"],
                cancel_new=row["collision_strategy"] == "cancel-new",
            )
        )
    return tuple(limits)


async def _attempt(
    conn: Connection | OnDemand,
    proposal: ProposeState,
    default_lease_seconds: float,
    now: datetime | None,
    slot_wait_seconds: float,
    cache: RunCache | None,
    batch: WriteBatch | None,
) -> Outcome:
    if cache is not None and (cached := cache.get(proposal.flow_run_id)) is not None:
        if not _is_claim(cached, proposal):  # a claim counts limits: always the full path
            outcome = await _write_from_cache(
                conn, cached, proposal, default_lease_seconds, now, slot_wait_seconds, cache, batch
            )
            if outcome is not None:
                return outcome
    db = await connection(conn)  # taken only now: the cached path above may not need one
    row = await db.fetchrow(_READ, proposal.flow_run_id, proposal.transition_id)
    if row is None:
        raise RunNotFound(f"flow run {proposal.flow_run_id} does not exist")
    if (replayed := _replayed(row["replay"])) is not None:
        return Outcome(replayed, [])
    if _is_claim(row, proposal):
        async with db.transaction():
            limits = await _hold_limits(db, proposal.flow_run_id)
            return await _decide_and_write(
                db, row, proposal, limits, default_lease_seconds, now, slot_wait_seconds, cache
            )
    return await _decide_and_write(
        db, row, proposal, (), default_lease_seconds, now, slot_wait_seconds, cache
    )


def _decide(
    row: Mapping[str, Any],
    proposal: ProposeState,
    limits: tuple[Limit, ...],
    now: datetime | None,
    slot_wait_seconds: float,
) -> tuple[State, Decision]:
    stored = row["state"]  # a model where this process wrote it, its JSON where it was read
    current = stored if isinstance(stored, State) else State.model_validate(stored)
    snapshot = RunSnapshot(
        state=current,
        state_version=row["state_version"],
        run_count=row["run_count"],
        retries=row["retries"],
        retry_delay_seconds=row["retry_delay_seconds"],
        claim_id=row["claim_id"],
        limits=limits,
        slot_wait_seconds=slot_wait_seconds,
        reaped_version=row.get("reaped_version"),
    )
    proposed = Proposal(proposal.state, force=proposal.force, claim_id=proposal.claim_id)
    return current, decide(snapshot, proposed, now or utcnow())


def _remember(cache: RunCache | None, written: _Written) -> None:
    if cache is None:
        return
    run_id = written.before["id"]
    if written.changes["state_type"] in _SETTLED:
        cache.forget(run_id)  # a run that ended is rarely proposed to again
    else:
        cache.put(run_id, written.row)


_SETTLED = frozenset(t.value for t in StateType if t.is_terminal)


async def _write_from_cache(
    conn: Connection | OnDemand,
    cached: Mapping[str, Any],
    proposal: ProposeState,
    default_lease_seconds: float,
    now: datetime | None,
    slot_wait_seconds: float,
    cache: RunCache,
    batch: WriteBatch | None,
) -> Outcome | None:
    """Decide against the row as this process last wrote it and write, if that decision is a
    single write and the run is still at that version. None: take the full path.

    This write, outside any transaction, is the one that may share a statement (`batch`)."""
    current, decision = _decide(cached, proposal, (), now, slot_wait_seconds)
    if decision.write is None or decision.follow_up is not None:
        return None  # answers without a write come from a fresh read (and its replay check)
    written = await _write(
        conn,
        cached,
        decision.write,
        previous=current,
        version=cached["state_version"] + 1,
        transition_id=proposal.transition_id,
        verdict=decision.verdict,
        claim=proposal.claim,
        default_lease=default_lease_seconds,
        batch=batch,
    )
    if written is None:
        cache.forget(proposal.flow_run_id)  # changed elsewhere
        return None
    _remember(cache, written)
    return Outcome(
        TransitionResult(
            verdict=decision.verdict,
            state=decision.write,
            state_version=cached["state_version"] + 1,
            reason=decision.reason,
            delay_seconds=decision.delay_seconds,
        ),
        [written.outbox, written.event],
        current.type,
    )


async def _decide_and_write(
    conn: Connection,
    row: Mapping[str, Any],
    proposal: ProposeState,
    limits: tuple[Limit, ...],
    default_lease_seconds: float,
    now: datetime | None,
    slot_wait_seconds: float,
    cache: RunCache | None,
) -> Outcome:
    current, decision = _decide(row, proposal, limits, now, slot_wait_seconds)
    if decision.write is None:
        if decision.verdict is Verdict.WAIT and proposal.claim is not None:
            # the worker drops a claim told to wait: dispatch the run again when it is due
            await conn.execute(
                "UPDATE flow_runs SET dispatched_version = NULL WHERE id = $1 AND state_version = $2",
                row["id"],
                row["state_version"],
            )
        return Outcome(
            TransitionResult(
                verdict=decision.verdict,
                state=current,
                state_version=row["state_version"],
                reason=decision.reason,
                delay_seconds=decision.delay_seconds,
            ),
            [],
            current.type,
        )
    write = partial(_write, conn, row, default_lease=default_lease_seconds, verdict=decision.verdict)
    first = partial(write, decision.write, previous=current, transition_id=proposal.transition_id)
    version = row["state_version"] + 1
    if decision.follow_up is None:
        rows = [await first(version=version, claim=proposal.claim)]
        final = decision.write
        if rows[0] is not None:
            _remember(cache, rows[0])
    else:
        # two states that must land together: the crash, then its retry
        async with conn.transaction():
            rows = [await first(version=version, claim=proposal.claim)]
            if rows[0] is not None:
                version += 1
                rows.append(
                    await write(
                        decision.follow_up,
                        previous=decision.write,
                        version=version,
                        transition_id=None,
                        claim=None,
                    )
                )
            if None in rows:
                raise _Moved  # rolls the first write back too
        final = decision.follow_up
        if cache is not None:
            cache.forget(proposal.flow_run_id)
    if None in rows:
        raise _Moved
    return Outcome(
        TransitionResult(
            verdict=decision.verdict,
            state=final,
            state_version=version,
            reason=decision.reason,
            delay_seconds=decision.delay_seconds,
        ),
        [out for row in rows if row is not None for out in (row.outbox, row.event)],
        current.type,
    )
