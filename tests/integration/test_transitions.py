"""The transition function against the real database: locks, versions, idempotency, history."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton_schemas import utcnow
from baton_schemas.envelopes import Claim
from baton_schemas.states import (
    TERMINAL_TYPES,
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
from baton_server.context import ServerContext
from baton_server.db.run_cache import RunCache
from baton_server.tracker.write_batch import WriteBatch

from ..support.runs import new_run, propose


async def test_a_retried_proposal_gets_the_same_answer(ctx: ServerContext) -> None:
    run = await new_run(ctx)
    transition = uuid.uuid4()
    first = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w1"), transition_id=transition)
    again = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w1"), transition_id=transition)
    assert first.verdict is again.verdict is Verdict.ACCEPT
    assert first.state_version == again.state_version == 2
    assert first.state is not None and again.state is not None and first.state.id == again.state.id
    other = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w2"))
    assert other.verdict is Verdict.ABORT


async def test_a_cached_run_is_written_without_reading_and_stays_correct(ctx: ServerContext) -> None:
    """The tracker's cache: the run as this process wrote it. A change made elsewhere makes the
    conditional write fail, and the proposal is decided again on a fresh read."""
    cache = RunCache()
    run = await new_run(ctx)
    assert (
        await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w"), cache=cache)
    ).verdict is Verdict.ACCEPT
    assert cache.get(run.id) is not None and cache.get(run.id)["state_version"] == 2  # type: ignore[index]
    running = uuid.uuid4()
    queries: list[str] = []
    async with ctx.pool.acquire() as conn:
        conn.add_query_logger(lambda record: queries.append(record.query))
        first = await propose(ctx, run.id, Running(), transition_id=running, cache=cache, conn=conn)
    assert len(queries) == 1, "a cached run is written in one round trip, without reading it"
    again = await propose(ctx, run.id, Running(), transition_id=running, cache=cache)  # a resend
    assert (
        first.verdict is again.verdict is Verdict.ACCEPT and first.state_version == again.state_version == 3
    )
    # another process fails the run; this cache still says Running at version 3
    assert (await propose(ctx, run.id, Failed())).verdict is Verdict.ACCEPT
    late = await propose(ctx, run.id, Completed(), cache=cache)
    assert late.verdict is Verdict.REJECT and late.state is not None and late.state.type is StateType.FAILED
    assert cache.get(run.id) is None
    async with ctx.pool.acquire() as conn:
        names = [
            r["name"]
            for r in await conn.fetch(
                "SELECT name FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
            )
        ]
    assert names == ["Scheduled", "Pending", "Running", "Failed"]


async def test_a_run_created_through_the_cache_is_not_read_back(ctx: ServerContext) -> None:
    """An ad-hoc run: created, then Pending, Running, Completed, one statement each."""
    cache = RunCache()
    run = await new_run(ctx, cache=cache)
    queries: list[str] = []
    async with ctx.pool.acquire() as conn:
        conn.add_query_logger(lambda record: queries.append(record.query))
        for state in (Pending(), Running(), Completed()):
            result = await propose(ctx, run.id, state, cache=cache, conn=conn)
            assert result.verdict is Verdict.ACCEPT
    assert len(queries) == 3
    assert cache.get(run.id) is None  # ended: nothing more to expect of it


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "batched"])
async def test_fifty_concurrent_endings_through_one_cache_exactly_one_wins(
    ctx: ServerContext, batched: bool
) -> None:
    cache = RunCache()
    batch = WriteBatch() if batched else None
    run = await new_run(ctx)
    await propose(ctx, run.id, Running(), cache=cache, batch=batch)
    endings = [Completed(), Failed(), Crashed(), Cancelled()] * 13
    results = await asyncio.gather(*(propose(ctx, run.id, s, cache=cache, batch=batch) for s in endings[:50]))
    assert [r.verdict for r in results].count(Verdict.ACCEPT) == 1


async def test_claim_records_owner_and_lease(ctx: ServerContext, conn) -> None:  # type: ignore[no-untyped-def]
    run = await new_run(ctx)
    await propose(ctx, run.id, Pending(), claim=Claim(worker_id="worker-7", lease_seconds=60))
    row = await conn.fetchrow(
        "SELECT worker_id, claim_id, lease_expires_at FROM flow_runs WHERE id = $1", run.id
    )
    assert row["worker_id"] == "worker-7"
    assert row["claim_id"] is not None
    assert row["lease_expires_at"] > utcnow() + timedelta(seconds=50)
    await propose(ctx, run.id, Running())
    await propose(ctx, run.id, Completed())
    row = await conn.fetchrow(
        "SELECT worker_id, lease_expires_at, end_time, run_count FROM flow_runs WHERE id = $1",
        run.id,
    )
    assert row["worker_id"] is None and row["lease_expires_at"] is None
    assert row["end_time"] is not None and row["run_count"] == 1


async def test_future_run_is_told_to_wait(ctx: ServerContext) -> None:
    run = await new_run(ctx, state=Scheduled(utcnow() + timedelta(seconds=60)))
    result = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w"))
    assert result.verdict is Verdict.WAIT
    assert result.delay_seconds is not None and 55 < result.delay_seconds <= 60


async def test_history_is_written_in_version_order(ctx: ServerContext, conn) -> None:  # type: ignore[no-untyped-def]
    run = await new_run(ctx, retries=1)
    for state in (Pending(), Running(), Failed("first"), Running(), Completed()):
        await propose(ctx, run.id, state)
    rows = await conn.fetch(
        "SELECT version, name FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
    )
    assert [(r["version"], r["name"]) for r in rows] == [
        (1, "Scheduled"),
        (2, "Pending"),
        (3, "Running"),
        (4, "AwaitingRetry"),
        (5, "Running"),
        (6, "Completed"),
    ]


async def test_fifty_concurrent_claims_exactly_one_wins(ctx: ServerContext) -> None:
    run = await new_run(ctx)
    results = await asyncio.gather(
        *(propose(ctx, run.id, Pending(), claim=Claim(worker_id=f"w{i}")) for i in range(50))
    )
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.ACCEPT) == 1
    assert verdicts.count(Verdict.ABORT) == 49


async def test_fifty_concurrent_endings_exactly_one_wins(ctx: ServerContext) -> None:
    run = await new_run(ctx)
    await propose(ctx, run.id, Running())
    endings = [Completed(), Failed(), Crashed(), Cancelled()] * 13
    results = await asyncio.gather(*(propose(ctx, run.id, s) for s in endings[:50]))
    assert [r.verdict for r in results].count(Verdict.ACCEPT) == 1


PROPOSALS = st.sampled_from([Scheduled, Pending, Running, Completed, Failed, Crashed, Cancelling, Cancelled])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(PROPOSALS, st.booleans(), st.integers(0, 2), st.sampled_from([None, 0, 1])),
        min_size=1,
        max_size=14,
    )
)
async def test_random_proposal_sequences_keep_the_invariants(ctx: ServerContext, steps) -> None:  # type: ignore[no-untyped-def]
    """Each proposal goes through one of three "processes": two with a run cache of their own
    (each goes stale whenever another writes; one of them batches its writes, as the tracker
    does) and one without."""
    run = await new_run(ctx, retries=1)
    caches = [RunCache(), RunCache()]
    batches = [WriteBatch(), None]
    last_version = 1
    claims = 0
    ended_as: StateType | None = None
    for make, claim, worker, process in steps:
        state: State = make()
        result = await propose(
            ctx,
            run.id,
            state,
            claim=Claim(worker_id=f"w{worker}") if claim else None,
            cache=None if process is None else caches[process],
            batch=None if process is None else batches[process],
        )
        assert result.state_version >= last_version, "versions only increase"
        if result.state_version > last_version:
            assert result.verdict in (Verdict.ACCEPT, Verdict.REJECT)
        if state.type is StateType.PENDING and result.verdict is Verdict.ACCEPT:
            claims += 1
        if ended_as is not None:
            assert result.verdict in (Verdict.REJECT, Verdict.ABORT), "terminal stays terminal"
            assert result.state is not None and result.state.type is ended_as
        last_version = result.state_version
        if result.state is not None and result.state.type in TERMINAL_TYPES:
            ended_as = result.state.type
    async with ctx.pool.acquire() as conn:
        pendings = await conn.fetchval(
            "SELECT count(*) FROM states WHERE flow_run_id = $1 AND type = 'PENDING'", run.id
        )
        versions = [
            r["version"]
            for r in await conn.fetch(
                "SELECT version FROM states WHERE flow_run_id = $1 ORDER BY version", run.id
            )
        ]
    # a run is claimed at most once per scheduling: every claim follows its own Scheduled state
    scheduled = await _count(ctx, run.id, "SCHEDULED")
    assert pendings <= scheduled
    assert claims == pendings
    assert versions == list(range(1, len(versions) + 1)), "no gaps, no duplicates"


async def _count(ctx: ServerContext, run_id: uuid.UUID, state_type: str) -> int:
    async with ctx.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM states WHERE flow_run_id = $1 AND type = $2",
                run_id,
                state_type,
            )
        )
