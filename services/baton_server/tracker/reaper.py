"""The reaper: a run whose lease expired has lost its owner (a Paused one too, while its process
waits to be resumed; a Suspended run has no lease). It is marked Crashed (then the retry policy
decides), or Cancelled if it was being cancelled. Replicas share the scan with SKIP LOCKED. Each
pass also fails the paused runs whose pause timed out (`pause_timeouts`).

A lease missed while this process could not hear heartbeats is no evidence of a crash: the
heartbeats may be waiting in the broker, or an owner may have had no broker to send them on.
So a run is reaped only once a whole lease (its own length) has passed since the reaper last
began to hear: its process started, regained the broker (a reconnect, or a round trip to the
broker that works again after failing) or regained the database (a pass that works again).
A Crashed written here keeps the run's claim id and is marked (`reaped_version`), so that a final
state arriving late from that claim still wins (`rules.lifecycle.LateFinalStateWins`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg

from baton_schemas import utcnow
from baton_schemas.envelopes import ProposeState
from baton_schemas.states import Crashed, StateType

from ..broker.outbox import Outbox
from .pause_timeouts import fail_expired_pauses
from .transitions import propose_flow_run_state

log = logging.getLogger(__name__)

_BATCH = 100

# A round trip to the broker: raises (or times out) when the broker cannot be heard.
Probe = Callable[[], Awaitable[None]]

_EXPIRED = """
    SELECT id, lease_expires_at, worker_id, claim_id, traceparent FROM flow_runs
    WHERE lease_expires_at < now()
      AND state_type IN ('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')
      AND now() > $1::timestamptz + make_interval(secs => COALESCE(lease_seconds, $2))
    ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED"""


class Reaper:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        outbox: Outbox,
        *,
        interval: float = 2.0,
        default_lease_seconds: float = 30.0,
        probe: Probe | None = None,
        probe_timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._interval = interval
        self._default_lease = default_lease_seconds
        self._probe = probe
        self._probe_timeout = probe_timeout
        self._task: asyncio.Task[None] | None = None
        self.hearing_since: datetime = utcnow()
        self._deaf = False  # the last probe of the broker failed
        self._failing = False  # the last pass failed (the database)

    def start(self) -> None:
        self.hearing_since = utcnow()
        self._task = asyncio.create_task(self._loop(), name="reaper")

    def regained(self, what: str) -> None:
        """Heartbeats can reach us again: no lease counts as missed before a whole one passed."""
        self.hearing_since = utcnow()
        log.info("reaper: %s is back; leases get one more lease of grace", what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                if await self._hears():
                    if self._failing:  # is the database back? then a lease of grace first
                        async with self._pool.acquire() as conn:
                            await conn.fetchval("SELECT 1")
                        self._failing = False
                        self.regained("the database")
                    else:
                        await self.reap()
                        await self.expire_pauses()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failing = True
                log.warning("reaper pass failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def _hears(self) -> bool:
        """A round trip to the broker; False (and the grace restarts when it works) if not."""
        if self._probe is None:
            return True
        try:
            async with asyncio.timeout(self._probe_timeout):
                await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._deaf:
                log.warning("reaper: the broker does not answer (%r); reaping nothing", exc)
            self._deaf = True
            return False
        if self._deaf:
            self._deaf = False
            self.regained("the broker")
        return True

    async def reap(self) -> int:
        """Mark every run whose lease expired (past the grace). Returns how many were reaped."""
        reaped = 0
        for _ in range(_BATCH):
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_EXPIRED, self.hearing_since, self._default_lease)
                if row is None:
                    break
                owner = f" (worker {row['worker_id']})" if row["worker_id"] else ""
                message = (
                    f"lease expired at {row['lease_expires_at'].isoformat()}: no heartbeat from "
                    f"its owner{owner}"
                )
                outcome = await propose_flow_run_state(
                    conn,
                    ProposeState(flow_run_id=row["id"], state=Crashed(message=message)),
                    traceparent=row["traceparent"],  # traces on: the crash joins the run's trace
                )
                if not outcome.outbox:  # nothing written: never pick the same row forever
                    await conn.execute(
                        "UPDATE flow_runs SET lease_expires_at = NULL WHERE id = $1", row["id"]
                    )
                elif (ended := outcome.result.state) is not None:
                    await self._mark(conn, row, ended.type, outcome.result.state_version)
            self._outbox.sent_after_commit(outcome.outbox)
            log.warning("flow run %s: %s -> %s", row["id"], message, outcome.result.state)
            reaped += 1
        return reaped

    async def expire_pauses(self) -> int:
        """Fail the paused runs past their pause's timeout. Returns how many."""
        async with self._pool.acquire() as conn:
            outcomes = await fail_expired_pauses(
                conn, default_lease_seconds=self._default_lease, now=utcnow()
            )
        for outcome in outcomes:
            self._outbox.sent_after_commit(outcome.outbox)
        return len(outcomes)

    @staticmethod
    async def _mark(conn: Any, row: Any, ended: StateType, version: int) -> None:
        """Remember which claim was reaped, and at which version, for a late final state."""
        if ended is StateType.CRASHED:
            crashed = version
        elif ended is StateType.SCHEDULED:  # Crashed, then its retry
            crashed = version - 1
        else:  # Cancelled: a cancellation is final
            return
        await conn.execute(
            "UPDATE flow_runs SET claim_id = $2, reaped_version = $3 WHERE id = $1 AND state_version = $4",
            row["id"],
            row["claim_id"],
            crashed,
            version,
        )
