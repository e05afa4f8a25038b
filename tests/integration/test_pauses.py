"""Pausing against the real database: what a pause stores, how a resume and a pause's timeout
meet (the one that commits first wins, the other is told so), and what each resume writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from baton_schemas.envelopes import Claim
from baton_schemas.pauses import PauseFlowRun, pause_details
from baton_schemas.states import Pending, Running, State, StateType, Verdict
from baton_server.context import ServerContext
from baton_server.tracker.pause_timeouts import fail_expired_pauses
from baton_server.tracker.pauses import NotPaused, pause_flow_run, read_input, resume_flow_run

from ..support.runs import new_run, propose

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


async def _running(ctx: ServerContext) -> tuple[uuid.UUID, uuid.UUID]:
    run = await new_run(ctx)
    claimed = await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w", lease_seconds=30))
    assert claimed.verdict is Verdict.ACCEPT
    claim_id = await ctx.pool.fetchval("SELECT claim_id FROM flow_runs WHERE id = $1", run.id)
    assert (await propose(ctx, run.id, Running(), claim_id=claim_id)).verdict is Verdict.ACCEPT
    return run.id, claim_id


async def _pause(ctx: ServerContext, run_id: uuid.UUID, claim_id: uuid.UUID, **fields: object) -> None:
    request = PauseFlowRun.model_validate({"key": "pause-1", "claim_id": claim_id, **fields})
    async with ctx.pool.acquire() as conn:
        outcome = await pause_flow_run(conn, run_id, request, default_lease_seconds=30)
    ctx.outbox.sent_after_commit(outcome.outbox)
    assert outcome.result.verdict is Verdict.ACCEPT, outcome.result


async def test_a_pause_keeps_its_claim_and_stores_its_schema_and_a_resume_its_input(
    ctx: ServerContext,
) -> None:
    run_id, claim_id = await _running(ctx)
    await _pause(ctx, run_id, claim_id, input_schema=SCHEMA, timeout_seconds=60)
    row = await ctx.pool.fetchrow(
        "SELECT claim_id, lease_expires_at, run_count FROM flow_runs WHERE id = $1", run_id
    )
    assert row is not None and row["claim_id"] == claim_id and row["lease_expires_at"] is not None
    async with ctx.pool.acquire() as conn:
        stored = await read_input(conn, run_id, "pause-1-schema")
        assert stored is not None and stored["value"] == SCHEMA
        outcome = await resume_flow_run(conn, run_id, {"n": 4}, default_lease_seconds=30, dispatch_within=5)
        answer = await read_input(conn, run_id, "pause-1")
    assert outcome.result.state is not None and outcome.result.state.type is StateType.RUNNING
    assert answer is not None and answer["value"] == {"n": 4}
    after = await ctx.pool.fetchrow("SELECT claim_id, run_count FROM flow_runs WHERE id = $1", run_id)
    assert after is not None and after["claim_id"] == claim_id and after["run_count"] == row["run_count"] == 1
    # the process's own proposals under its claim are still its
    assert (await propose(ctx, run_id, Running(name="Again"), claim_id=claim_id)).verdict is Verdict.REJECT


async def test_a_timed_out_pause_is_failed_once_and_can_no_longer_be_resumed(ctx: ServerContext) -> None:
    run_id, claim_id = await _running(ctx)
    await _pause(ctx, run_id, claim_id, timeout_seconds=60)
    stored = await ctx.pool.fetchval("SELECT state FROM flow_runs WHERE id = $1", run_id)
    details = pause_details(State.model_validate(stored))
    assert details is not None and details.timeout is not None
    async with ctx.pool.acquire() as conn:
        await fail_expired_pauses(conn, default_lease_seconds=30, now=details.timeout - timedelta(seconds=1))
        assert await _type(ctx, run_id) == "PAUSED"  # not yet
        with pytest.raises(NotPaused, match="its pause timed out"):
            await resume_flow_run(
                conn, run_id, None, default_lease_seconds=30, dispatch_within=5, now=details.timeout
            )
    later = details.timeout + timedelta(seconds=1)

    async def expire() -> None:
        async with ctx.pool.acquire() as conn:
            for outcome in await fail_expired_pauses(conn, default_lease_seconds=30, now=later):
                ctx.outbox.sent_after_commit(outcome.outbox)

    await asyncio.gather(expire(), expire())  # two trackers' passes at once
    assert await _type(ctx, run_id) == "FAILED"
    ended = await ctx.pool.fetch(
        "SELECT state FROM states WHERE flow_run_id = $1 AND type = 'FAILED'", run_id
    )
    assert len(ended) == 1  # failed once
    assert "paused and not resumed before its timeout" in ended[0]["state"]["message"]
    async with ctx.pool.acquire() as conn:
        with pytest.raises(NotPaused, match="is not paused"):
            await resume_flow_run(conn, run_id, None, default_lease_seconds=30, dispatch_within=5)


async def _type(ctx: ServerContext, run_id: uuid.UUID) -> str:
    return str(await ctx.pool.fetchval("SELECT state_type FROM flow_runs WHERE id = $1", run_id))
