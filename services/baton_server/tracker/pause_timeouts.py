"""Paused runs past their pause's timeout are Failed, by the reaper's pass (`reaper.Reaper`).

Apart from `pauses` so that the tracker's process does not load what resuming needs (the JSON
Schema validator and, through it, the templates)."""

from __future__ import annotations

import logging
from datetime import datetime

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Failed

from ..db.types import Connection
from .transitions import Outcome, propose_flow_run_state

log = logging.getLogger(__name__)


def _deadline(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def fail_expired_pauses(
    conn: Connection, *, default_lease_seconds: float, now: datetime
) -> list[Outcome]:
    """Fail every paused run past its timeout; each in a transaction of its own."""
    rows = await conn.fetch(
        """SELECT id, state_version, state->'data'->'pause'->>'timeout' AS timeout
           FROM flow_runs WHERE state_type = 'PAUSED'"""
    )
    outcomes = []
    for row in rows:
        deadline = _deadline(row["timeout"])
        if deadline is None or deadline > now:
            continue
        async with conn.transaction():
            version = await conn.fetchval(
                "SELECT state_version FROM flow_runs WHERE id = $1 FOR UPDATE SKIP LOCKED", row["id"]
            )
            if version != row["state_version"]:
                continue  # resumed, cancelled or taken by another tracker meanwhile
            message = f"paused and not resumed before its timeout ({deadline.isoformat()})"
            proposal = ProposeState(flow_run_id=row["id"], state=Failed(message=message))
            outcomes.append(
                await propose_flow_run_state(conn, proposal, default_lease_seconds=default_lease_seconds)
            )
        log.info("flow run %s: %s", row["id"], message)
    return outcomes
