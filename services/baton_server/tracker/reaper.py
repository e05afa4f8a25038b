"""The reaper: a run whose lease expired has lost its owner. It is marked Crashed (then the retry
policy decides), or Cancelled if it was being cancelled. Replicas share the scan with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Crashed

from ..broker.outbox import Outbox
from .transitions import propose_flow_run_state

log = logging.getLogger(__name__)

_BATCH = 100


class Reaper:
    def __init__(self, pool: asyncpg.Pool[Any], outbox: Outbox, *, interval: float = 2.0) -> None:
        self._pool = pool
        self._outbox = outbox
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reaper pass failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def reap(self) -> int:
        """Mark every run whose lease expired. Returns how many were reaped."""
        reaped = 0
        for _ in range(_BATCH):
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    """SELECT id, lease_expires_at, worker_id FROM flow_runs
                       WHERE lease_expires_at < now()
                         AND state_type IN ('PENDING', 'RUNNING', 'CANCELLING')
                       ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED"""
                )
                if row is None:
                    break
                owner = f" (worker {row['worker_id']})" if row["worker_id"] else ""
                message = (
                    f"lease expired at {row['lease_expires_at'].isoformat()}: no heartbeat from "
                    f"its owner{owner}"
                )
                outcome = await propose_flow_run_state(
                    conn, ProposeState(flow_run_id=row["id"], state=Crashed(message=message))
                )
                if not outcome.outbox:  # nothing written: never pick the same row forever
                    await conn.execute(
                        "UPDATE flow_runs SET lease_expires_at = NULL WHERE id = $1", row["id"]
                    )
            self._outbox.sent_after_commit(outcome.outbox)
            log.warning("flow run %s: %s -> %s", row["id"], message, outcome.result.state)
            reaped += 1
        return reaped
