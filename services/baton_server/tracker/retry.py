"""A user's retry of an ended deployment run (`baton flow-run retry`), and deleting a run."""

from __future__ import annotations

import uuid

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import AwaitingRetry, StateType

from ..db.types import Connection
from .transitions import Outcome, RunNotFound, propose_flow_run_state


class NotRetryable(ValueError):
    """The run cannot be retried (still going, or not a deployment's)."""


async def retry_flow_run(
    conn: Connection, run_id: uuid.UUID, *, default_lease_seconds: float, dispatch_within: float
) -> Outcome:
    """Move an ended deployment run back to Scheduled (AwaitingRetry, due now), past the rule
    that a terminal state is never left: the explicit retry the rules make room for. It is
    dispatched in the same transaction, to any worker of its pool."""
    from ..scheduler.dispatch import dispatch_runs

    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT state_type, deployment_id FROM flow_runs WHERE id = $1 FOR UPDATE", run_id
        )
        if row is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        if not StateType(row["state_type"]).is_terminal:
            raise NotRetryable(
                f"flow run {run_id} has not ended ({row['state_type'].lower()}): nothing to retry"
            )
        if row["deployment_id"] is None:
            raise NotRetryable(
                f"flow run {run_id} is not a deployment's: no worker can start it; run its flow again"
            )
        state = AwaitingRetry(message="retried by a user")
        outcome = await propose_flow_run_state(
            conn,
            ProposeState(flow_run_id=run_id, state=state, force=True),
            default_lease_seconds=default_lease_seconds,
        )
        outcome.outbox.extend(await dispatch_runs(conn, [run_id], within_seconds=dispatch_within))
    return outcome


async def delete_flow_run(conn: Connection, run_id: uuid.UUID) -> None:
    """Delete an ended run with its states, task runs and logs."""
    async with conn.transaction():
        state_type = await conn.fetchval("SELECT state_type FROM flow_runs WHERE id = $1 FOR UPDATE", run_id)
        if state_type is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        if not StateType(state_type).is_terminal:
            raise NotRetryable(f"flow run {run_id} has not ended ({state_type.lower()}): cancel it first")
        await conn.execute("DELETE FROM logs WHERE flow_run_id = $1", run_id)
        await conn.execute("DELETE FROM flow_runs WHERE id = $1", run_id)
