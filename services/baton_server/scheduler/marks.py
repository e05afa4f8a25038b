"""The state changes the scheduler makes to runs: Skipped (a Cancelled state) and Late (a
Scheduled one). Both go through the tracker's transition function, so they are recorded in the
history and published on `baton.states` like every other change. Callers hold the run's row
lock (SELECT ... FOR UPDATE), so no other process moves it meanwhile."""

from __future__ import annotations

import uuid
from datetime import datetime

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Late, State, StateType, Verdict

from ..broker.outbox import OutboxRow
from ..db.types import Connection
from ..tracker.transitions import propose_flow_run_state

SKIPPED = "Skipped"


def Skipped(reason: str) -> State:
    return State(type=StateType.CANCELLED, name=SKIPPED, message=reason)


async def skip_run(conn: Connection, run_id: uuid.UUID, reason: str) -> list[OutboxRow]:
    outcome = await propose_flow_run_state(conn, ProposeState(flow_run_id=run_id, state=Skipped(reason)))
    return outcome.outbox


async def mark_late(
    conn: Connection, run_id: uuid.UUID, scheduled: datetime, late_seconds: float
) -> list[OutboxRow]:
    """Scheduled -> Late. A run already dispatched is not dispatched again for it."""
    state = Late(scheduled, message=f"not started {late_seconds:.0f} s after its scheduled time")
    outcome = await propose_flow_run_state(conn, ProposeState(flow_run_id=run_id, state=state))
    if outcome.result.verdict is Verdict.ACCEPT:
        await conn.execute(
            """UPDATE flow_runs SET dispatched_version = state_version
               WHERE id = $1 AND dispatched_version = state_version - 1""",
            run_id,
        )
    return outcome.outbox
