"""Cancelling a run: a waiting run is Cancelled at once; a started one goes Cancelling and its
worker (or engine) is told on `baton.control`, stops the process and proposes Cancelled. If
nobody is left to do that, the lease runs out and the reaper ends it Cancelled."""

from __future__ import annotations

import uuid

from baton_schemas.envelopes import ControlKind, ControlMessage, ProposeState
from baton_schemas.states import Cancelled, Cancelling, StateType, Verdict
from baton_schemas.topology import CONTROL, flow_run_control_key

from ..broker.outbox import Outbox, OutboxMessage
from ..db.types import Connection
from .transitions import Outcome, RunNotFound, propose_flow_run_state

_STARTED = {StateType.PENDING.value, StateType.RUNNING.value}


async def cancel_flow_run(
    conn: Connection, run_id: uuid.UUID, *, default_lease_seconds: float, reason: str = "cancelled by a user"
) -> Outcome:
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT state_type, lease_expires_at IS NOT NULL AS owned FROM flow_runs WHERE id = $1", run_id
        )
        if row is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        # a Paused run whose process waits has an owner too, who stops that process
        started = row["state_type"] in _STARTED or (
            row["state_type"] == StateType.PAUSED.value and row["owned"]
        )
        target = Cancelling(message=reason) if started else Cancelled(message=reason)
        outcome = await propose_flow_run_state(
            conn,
            ProposeState(flow_run_id=run_id, state=target),
            default_lease_seconds=default_lease_seconds,
        )
        if outcome.result.verdict is Verdict.ACCEPT and target.type is StateType.CANCELLING:
            control = ControlMessage(kind=ControlKind.CANCEL, flow_run_id=run_id, reason=reason)
            outcome.outbox.extend(
                await Outbox.add(
                    conn,
                    [OutboxMessage(CONTROL, flow_run_control_key(run_id), uuid.uuid4(), control.to_json())],
                )
            )
    return outcome
