"""Group commit for flow-run transitions decided against the tracker's cached rows.

Such a transition is one conditional write (see transitions.py). Under load dozens are in
flight at once, and one statement each costs PostgreSQL a statement, a transaction and a WAL
flush per transition. `WriteBatch` stores the first write at once, so an idle tracker answers
as fast as before, and the writes that arrive meanwhile together in one multi-row statement.
Each write in it still succeeds only if its run is at the version it was decided against, so
every writer gets the answer the single statement would have given it.

The writer that finds a free slot leads: it runs the statement for its own write and the
waiting ones on its own connection (taken then, if it takes them on demand: the others need
none), so at most `max_statements` connections carry the batches and they cannot starve the
pool. When it is done it hands the lead to the next writer waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

import asyncpg

from baton_schemas.topology import EVENTS

from ..db.on_demand import OnDemand, connection
from ..db.types import Connection

# The single write, and the same for many runs at once: arguments in the same order, each an
# array in the second. A flow run's state change carries the run as its ordering key, and each
# row comes back with the ids of its run's older changes still in the outbox, and the outbox id
# of the transition's event (on baton.events; unordered: `follows` orders a run's events).
WRITE = f"""
    WITH run AS (
        UPDATE flow_runs SET
            state = $2, state_type = $3, state_name = $4, state_version = $5,
            next_scheduled_time = $6,
            run_count = run_count + $7,
            start_time = CASE WHEN $7 = 1 THEN COALESCE(start_time, $8) ELSE start_time END,
            end_time = $9,
            worker_id = $10, claim_id = $11, lease_expires_at = $12, lease_seconds = $20,
            updated = now()
        WHERE id = $1 AND state_version = $5 - 1
        RETURNING id
    ), history AS (
        INSERT INTO states (id, flow_run_id, transition_id, verdict, version, type, name,
            timestamp, state)
        SELECT $13, id, $14, $15, $5, $3, $4, $8, $2 FROM run
    ), event AS (
        -- the transition as an event (baton.flow-run.<StateName>), its id the state id
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT '{EVENTS}', $21, $13, $22, true FROM run
        RETURNING id
    )
    INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory, ordering_key)
    SELECT $16, $17, $13, $18, $19, id FROM run
    -- the run's older changes still waiting to go out (the statement's snapshot has not ours)
    RETURNING id, ordering_key, ARRAY(SELECT o.id FROM outbox o WHERE o.ordering_key = $1) AS after,
        (SELECT id FROM event) AS event_row"""

WRITE_MANY = f"""
    WITH w AS (
        SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::text[], $5::int[],
            $6::timestamptz[], $7::int[], $8::timestamptz[], $9::timestamptz[], $10::text[],
            $11::uuid[], $12::timestamptz[], $13::uuid[], $14::uuid[], $15::text[], $16::text[],
            $17::text[], $18::bytea[], $19::bool[], $20::float8[], $21::text[], $22::bytea[])
            WITH ORDINALITY AS w(id, state, state_type, state_name, version, next_scheduled_time,
                running, timestamp, end_time, worker_id, claim_id, lease, state_id,
                transition_id, verdict, exchange, routing_key, body, mandatory, lease_seconds,
                event_key, event_body, ord)
    ), run AS (
        UPDATE flow_runs fr SET
            state = w.state, state_type = w.state_type, state_name = w.state_name,
            state_version = w.version,
            next_scheduled_time = w.next_scheduled_time,
            run_count = fr.run_count + w.running,
            start_time = CASE WHEN w.running = 1 THEN COALESCE(fr.start_time, w.timestamp)
                              ELSE fr.start_time END,
            end_time = w.end_time,
            worker_id = w.worker_id, claim_id = w.claim_id, lease_expires_at = w.lease,
            lease_seconds = w.lease_seconds,
            updated = now()
        FROM w WHERE fr.id = w.id AND fr.state_version = w.version - 1
        RETURNING w.ord
    ), history AS (
        INSERT INTO states (id, flow_run_id, transition_id, verdict, version, type, name,
            timestamp, state)
        SELECT w.state_id, w.id, w.transition_id, w.verdict, w.version, w.state_type,
            w.state_name, w.timestamp, w.state
        FROM w JOIN run USING (ord)
    ), sent AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory, ordering_key)
        SELECT w.exchange, w.routing_key, w.state_id, w.body, w.mandatory, w.id
        FROM w JOIN run USING (ord)
        ORDER BY w.ord
        RETURNING id, ordering_key, message_id
    ), events AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT '{EVENTS}', w.event_key, w.state_id, w.event_body, true
        FROM w JOIN run USING (ord)
        ORDER BY w.ord
        RETURNING id, message_id
    )
    SELECT s.id, s.ordering_key,
        ARRAY(SELECT o.id FROM outbox o WHERE o.ordering_key = s.ordering_key) AS after,
        e.id AS event_row
    FROM sent s LEFT JOIN events e ON e.message_id = s.message_id"""

_LEAD = object()  # a waiting writer's cue to run the next batch itself


@dataclass(slots=True, eq=False)
class _Waiting:
    run_id: UUID
    args: Sequence[Any]  # WRITE's arguments
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class WriteBatch:
    """Runs `WRITE`s together. A write's answer is its row (outbox id, ordering key, `after`),
    or None if its run moved on since it was decided; a write that repeats a stored transition
    id raises asyncpg's UniqueViolationError, as the single statement does."""

    def __init__(self, *, max_size: int = 64, max_statements: int = 2) -> None:
        self._max_size = max_size
        # statements in flight at once: one can be in PostgreSQL while the next batch forms
        self._max_statements = max_statements
        self._running = 0
        self._waiting: deque[_Waiting] = deque()
        self.statements = 0  # run so far, and the writes they carried
        self.writes = 0

    @property
    def queued(self) -> int:
        """Writes waiting for a statement."""
        return len(self._waiting)

    async def write(
        self, conn: Connection | OnDemand, run_id: UUID, args: Sequence[Any]
    ) -> Mapping[str, Any] | None:
        me = _Waiting(run_id, args)
        if self._running < self._max_statements:
            self._running += 1
            return await self._lead(conn, me)
        self._waiting.append(me)
        try:
            answer = await me.future
        except asyncio.CancelledError:
            if me.future.done() and not me.future.cancelled() and me.future.result() is _LEAD:
                self._hand_over()  # cancelled as the lead came: pass it on, or nobody leads
            raise
        if answer is _LEAD:
            return await self._lead(conn, me)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    async def _lead(self, conn: Connection | OnDemand, me: _Waiting) -> Mapping[str, Any] | None:
        batch = self._take(me)
        self.statements += 1
        self.writes += len(batch)
        try:
            answers = await _store(await connection(conn), batch)
        except BaseException as exc:
            # the others' writes may or may not have committed: they fail, and are retried
            failed = exc if isinstance(exc, Exception) else RuntimeError(f"batched write cut short: {exc!r}")
            for other in batch[1:]:
                if not other.future.done():
                    other.future.set_exception(failed)
            raise
        finally:
            self._hand_over()
        for other, answer in zip(batch[1:], answers[1:], strict=True):
            if not other.future.done():  # its caller may have been cancelled meanwhile
                other.future.set_result(answer)
        mine = answers[0]
        if isinstance(mine, BaseException):
            raise mine
        return cast(Mapping[str, Any] | None, mine)

    def _take(self, me: _Waiting) -> list[_Waiting]:
        """`me` and the longest-waiting others, at most one write per run: a second write of
        a run was decided against the same version and waits to be tried after the first."""
        batch, runs, kept = [me], {me.run_id.int}, deque[_Waiting]()
        while self._waiting and len(batch) < self._max_size:
            waiting = self._waiting.popleft()
            if waiting.future.done():
                continue  # cancelled
            if waiting.run_id.int in runs:
                kept.append(waiting)
                continue
            runs.add(waiting.run_id.int)
            batch.append(waiting)
        kept.extend(self._waiting)
        self._waiting = kept
        return batch

    def _hand_over(self) -> None:
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_result(_LEAD)
                return
        self._running -= 1


async def _store(conn: Connection, batch: list[_Waiting]) -> list[Any]:
    """Each write's answer, in batch order: its row, None, or the exception it raises."""
    if len(batch) == 1:
        return [await conn.fetchrow(WRITE, *batch[0].args)]
    columns = [list(column) for column in zip(*(w.args for w in batch), strict=True)]
    try:
        rows = await conn.fetch(WRITE_MANY, *columns)
    except asyncpg.UniqueViolationError:
        # one of them repeats a transition id already stored: each alone, so only it fails
        return [await _store_alone(conn, w) for w in batch]
    by_run = {row["ordering_key"].int: row for row in rows}
    return [by_run.get(w.run_id.int) for w in batch]


async def _store_alone(conn: Connection, write: _Waiting) -> Any:
    try:
        return await conn.fetchrow(WRITE, *write.args)
    except asyncpg.UniqueViolationError as exc:
        return exc
