"""Group commit: transitions of different runs decided against the tracker's cache share one
statement, and each gets the answer it would have got alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Completed, Pending, Running, State, TransitionResult, Verdict
from baton_server.context import ServerContext
from baton_server.db.on_demand import OnDemand
from baton_server.db.run_cache import RunCache
from baton_server.tracker.transitions import propose_flow_run_state
from baton_server.tracker.write_batch import WriteBatch

from ..support.runs import new_run, propose
from ..support.waiting import eventually


async def _until(condition: Callable[[], bool], what: str, *tasks: asyncio.Task[Any]) -> None:
    """Wait for `condition` with a deadline; a task that ended meanwhile says why at once."""

    async def probe() -> bool:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(
                    f"{task.get_name()} failed while waiting for {what}"
                ) from task.exception()
        return condition()

    await eventually(probe, timeout=10, interval=0.005, what=what)


async def _cached_runs(ctx: ServerContext, cache: RunCache, n: int) -> list[uuid.UUID]:
    runs = [(await new_run(ctx, cache=cache)).id for _ in range(n)]
    for run_id in runs:
        await propose(ctx, run_id, Pending(), cache=cache)
    return runs


async def _while_first_write_is_held(
    ctx: ServerContext,
    batch: WriteBatch,
    first: Callable[[], Coroutine[Any, Any, TransitionResult]],
    others: list[Callable[[], Coroutine[Any, Any, TransitionResult]]],
    held_run: uuid.UUID,
) -> tuple[asyncio.Task[TransitionResult], list[asyncio.Task[TransitionResult]]]:
    """Start `first`, whose statement waits on a row lock, then `others`, which queue behind
    it; release the lock once all of them wait. Returns the running tasks."""
    async with ctx.pool.acquire() as blocker:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("SELECT 1 FROM flow_runs WHERE id = $1 FOR UPDATE", held_run)
        leader = asyncio.create_task(first())
        await _until(lambda: batch.statements > 0, "the first statement to be sent", leader)
        followers = [asyncio.create_task(other()) for other in others]
        await _until(lambda: batch.queued >= len(others), "the others to queue", leader, *followers)
        await lock.rollback()
    return leader, followers


async def test_writes_that_arrive_together_share_one_statement(ctx: ServerContext) -> None:
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    held, *runs = await _cached_runs(ctx, cache, 9)
    leader, followers = await _while_first_write_is_held(
        ctx,
        batch,
        lambda: propose(ctx, held, Running(), cache=cache, batch=batch),
        [partial(propose, ctx, run_id, Running(), cache=cache, batch=batch) for run_id in runs],
        held,
    )
    results = [await leader, *await asyncio.gather(*followers)]
    assert batch.statements == 2 and batch.writes == 9, "the eight waiting writes went together"
    assert all(r.verdict is Verdict.ACCEPT and r.state_version == 3 for r in results)
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT fr.id, fr.state_type, fr.state_version, fr.run_count, fr.start_time,
                      s.id AS history_id, s.version AS history_version, s.type AS history_type
               FROM flow_runs fr JOIN states s ON s.flow_run_id = fr.id AND s.version = 3
               WHERE fr.id = ANY($1::uuid[])""",
            [held, *runs],
        )
    assert len(rows) == 9
    for row in rows:
        assert (row["state_type"], row["state_version"], row["run_count"]) == ("RUNNING", 3, 1)
        assert row["start_time"] is not None
        assert (row["history_version"], row["history_type"]) == (3, "RUNNING")
    # each answer names the state stored for its own run, not a neighbour's in the statement
    stored = {row["id"]: row["history_id"] for row in rows}
    for run_id, result in zip([held, *runs], results, strict=True):
        assert result.state is not None and result.state.id == stored[run_id]


class _CountingPool:
    """The pool, counting the connections taken from it."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.taken = 0

    async def acquire(self) -> Any:
        self.taken += 1
        return await self._pool.acquire()

    async def release(self, conn: Any) -> None:
        await self._pool.release(conn)


async def test_writers_that_join_a_batch_take_no_connection_of_their_own(ctx: ServerContext) -> None:
    """As the tracker proposes (`OnDemand`): the lead takes a connection for its statement, the
    writes it carries take none, and a proposal that needs a read (not cached) takes one."""
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    held, *runs = await _cached_runs(ctx, cache, 9)
    pool = _CountingPool(ctx.pool)

    async def on_demand(run_id: uuid.UUID, state: State) -> TransitionResult:
        async with OnDemand(pool) as conn:  # type: ignore[arg-type]  # the counting stand-in
            outcome = await propose_flow_run_state(
                conn, ProposeState(flow_run_id=run_id, state=state), cache=cache, batch=batch
            )
        ctx.outbox.sent_after_commit(outcome.outbox)
        return outcome.result

    leader, followers = await _while_first_write_is_held(
        ctx,
        batch,
        lambda: on_demand(held, Running()),
        [partial(on_demand, run_id, Running()) for run_id in runs],
        held,
    )
    results = [await leader, *await asyncio.gather(*followers)]
    assert all(r.verdict is Verdict.ACCEPT and r.state_version == 3 for r in results)
    assert (batch.statements, batch.writes) == (2, 9)
    assert pool.taken == 2, "one connection per statement, none for the eight writes carried"

    cache.forget(runs[0])  # not cached: read, decided and written on a connection of its own
    assert (await on_demand(runs[0], Completed())).state_version == 4
    assert pool.taken == 3


async def test_a_run_changed_elsewhere_fails_alone_and_is_decided_afresh(ctx: ServerContext) -> None:
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    held, stale, fresh = await _cached_runs(ctx, cache, 3)
    # another process moves `stale` on: this cache still holds it at version 2
    await propose(ctx, stale, Running())
    leader, followers = await _while_first_write_is_held(
        ctx,
        batch,
        lambda: propose(ctx, held, Running(), cache=cache, batch=batch),
        [
            lambda: propose(ctx, stale, Completed(), cache=cache, batch=batch),
            lambda: propose(ctx, fresh, Running(), cache=cache, batch=batch),
        ],
        held,
    )
    await leader
    stale_result, fresh_result = await asyncio.gather(*followers)
    assert (fresh_result.verdict, fresh_result.state_version) == (Verdict.ACCEPT, 3)
    # the stale write matched no row; read again, Running -> Completed is accepted as version 4
    assert (stale_result.verdict, stale_result.state_version) == (Verdict.ACCEPT, 4)
    async with ctx.pool.acquire() as conn:
        versions = [
            r["version"]
            for r in await conn.fetch(
                "SELECT version FROM states WHERE flow_run_id = $1 ORDER BY version", stale
            )
        ]
    assert versions == [1, 2, 3, 4]


async def test_a_repeated_transition_id_fails_only_its_own_write(ctx: ServerContext) -> None:
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    held, done, reuser, *others = await _cached_runs(ctx, cache, 6)
    used = uuid.uuid4()
    await propose(ctx, done, Running(), transition_id=used, cache=cache)
    leader, followers = await _while_first_write_is_held(
        ctx,
        batch,
        lambda: propose(ctx, held, Running(), cache=cache, batch=batch),
        [
            # a client bug: another run's transition id. The history's unique id rejects it.
            lambda: propose(ctx, reuser, Running(), transition_id=used, cache=cache, batch=batch),
            *[partial(propose, ctx, run_id, Running(), cache=cache, batch=batch) for run_id in others],
        ],
        held,
    )
    await leader
    reused, *rest = await asyncio.gather(*followers)
    assert all(r.verdict is Verdict.ACCEPT and r.state_version == 3 for r in rest)
    # answered as that transition id was answered, and nothing written for `reuser`
    assert reused.state_version == 3 and reused.state is not None
    async with ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT state_version FROM flow_runs WHERE id = $1", reuser) == 2


async def test_a_cancelled_waiting_writer_does_not_stall_the_rest(ctx: ServerContext) -> None:
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    held, gone, *runs = await _cached_runs(ctx, cache, 5)
    async with ctx.pool.acquire() as blocker:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("SELECT 1 FROM flow_runs WHERE id = $1 FOR UPDATE", held)
        leader = asyncio.create_task(propose(ctx, held, Running(), cache=cache, batch=batch))
        await _until(lambda: batch.statements > 0, "the first statement to be sent", leader)
        cancelled = asyncio.create_task(propose(ctx, gone, Running(), cache=cache, batch=batch))
        await _until(lambda: batch.queued >= 1, "the writer to queue", leader, cancelled)
        followers = [asyncio.create_task(propose(ctx, r, Running(), cache=cache, batch=batch)) for r in runs]
        await _until(
            lambda: batch.queued >= 1 + len(runs), "the rest to queue", leader, cancelled, *followers
        )
        cancelled.cancel()
        await lock.rollback()
    assert (await leader).verdict is Verdict.ACCEPT
    results = await asyncio.wait_for(asyncio.gather(*followers), 10)
    assert all(r.verdict is Verdict.ACCEPT for r in results)
    assert cancelled.cancelled()
    async with ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT state_version FROM flow_runs WHERE id = $1", gone) == 2
    # and the batch is free again
    assert (await propose(ctx, gone, Running(), cache=cache, batch=batch)).state_version == 3


async def test_an_interrupted_statement_fails_the_writes_it_carried(ctx: ServerContext) -> None:
    """The leader of a batch is cancelled mid-statement: the other write it carried fails, and
    the batch goes on serving. Whether the statement committed is PostgreSQL's race with the
    cancel request; either way the redelivered proposal (same transition id) gets one answer
    and the history one row."""
    cache, batch = RunCache(), WriteBatch(max_statements=1)
    first_run, leader_run, carried_run = await _cached_runs(ctx, cache, 3)
    proposals = {run_id: (uuid.uuid4(), Running()) for run_id in (leader_run, carried_run)}

    def send(run_id: uuid.UUID) -> Coroutine[Any, Any, TransitionResult]:
        transition_id, state = proposals[run_id]
        return propose(ctx, run_id, state, transition_id=transition_id, cache=cache, batch=batch)

    async with ctx.pool.acquire() as blocker_a, ctx.pool.acquire() as blocker_b:
        lock_a, lock_b = blocker_a.transaction(), blocker_b.transaction()
        await lock_a.start()
        await lock_b.start()
        await blocker_a.execute("SELECT 1 FROM flow_runs WHERE id = $1 FOR UPDATE", first_run)
        await blocker_b.execute(
            "SELECT 1 FROM flow_runs WHERE id = ANY($1::uuid[]) FOR UPDATE", [leader_run, carried_run]
        )
        first = asyncio.create_task(propose(ctx, first_run, Running(), cache=cache, batch=batch))
        await _until(lambda: batch.statements >= 1, "the first statement to be sent", first)
        leader = asyncio.create_task(send(leader_run))
        await _until(lambda: batch.queued >= 1, "the leader to queue", first, leader)
        carried = asyncio.create_task(send(carried_run))
        await _until(lambda: batch.queued >= 2, "the carried write to queue", first, leader, carried)
        await lock_a.rollback()  # the first statement ends; the next leads the other two
        assert (await first).verdict is Verdict.ACCEPT
        await _until(lambda: batch.statements >= 2, "the second statement to be sent", leader, carried)
        assert batch.writes == 3
        leader.cancel()
        outcome = await asyncio.gather(carried, return_exceptions=True)
        await lock_b.rollback()
    await asyncio.gather(leader, return_exceptions=True)  # asyncpg cancels the statement first
    assert leader.cancelled()
    assert isinstance(outcome[0], RuntimeError) and "cut short" in str(outcome[0])
    # the tracker requeues both messages; redelivered, each is answered once and for all
    for run_id in (leader_run, carried_run):
        again = await send(run_id)
        assert (again.verdict, again.state_version) == (Verdict.ACCEPT, 3)
        assert again.state is not None and again.state.id == proposals[run_id][1].id
        async with ctx.pool.acquire() as conn:
            versions = await conn.fetch(
                "SELECT version FROM states WHERE flow_run_id = $1 ORDER BY version", run_id
            )
        assert [r["version"] for r in versions] == [1, 2, 3]
