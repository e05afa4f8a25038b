"""Helpers to make runs and drive transitions in tests."""

from __future__ import annotations

import uuid

from baton_schemas.envelopes import Claim, ProposeState
from baton_schemas.runs import FlowRun, FlowRunCreate, RetryPolicy
from baton_schemas.states import State, TransitionResult
from baton_server.context import ServerContext
from baton_server.db.flow_runs import create_flow_run
from baton_server.db.run_cache import RunCache
from baton_server.db.types import Connection
from baton_server.tracker.transitions import propose_flow_run_state
from baton_server.tracker.write_batch import WriteBatch


async def new_run(
    ctx: ServerContext,
    *,
    flow: str = "test flow",
    retries: int = 0,
    state: State | None = None,
    cache: RunCache | None = None,
) -> FlowRun:
    async with ctx.pool.acquire() as conn:
        run, rows, _ = await create_flow_run(
            conn,
            FlowRunCreate(flow_name=flow, state=state, retry_policy=RetryPolicy(retries=retries)),
            cache=cache,
        )
    ctx.outbox.sent_after_commit(rows)
    return run


async def propose(
    ctx: ServerContext,
    run_id: uuid.UUID,
    state: State,
    *,
    claim: Claim | None = None,
    transition_id: uuid.UUID | None = None,
    claim_id: uuid.UUID | None = None,
    conn: Connection | None = None,
    cache: RunCache | None = None,
    batch: WriteBatch | None = None,
) -> TransitionResult:
    proposal = ProposeState(
        flow_run_id=run_id,
        state=state,
        claim=claim,
        transition_id=transition_id or uuid.uuid4(),
        claim_id=claim_id,
    )
    if conn is not None:
        outcome = await propose_flow_run_state(conn, proposal, cache=cache, batch=batch)
    else:
        async with ctx.pool.acquire() as acquired:
            outcome = await propose_flow_run_state(acquired, proposal, cache=cache, batch=batch)
    ctx.outbox.sent_after_commit(outcome.outbox)
    return outcome.result
