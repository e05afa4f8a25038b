"""The transactional outbox: messages commit with the change that causes them, then go out.

Writers call `Outbox.add(conn, ...)` inside their transaction and `outbox.sent_after_commit(rows)`
once it committed. One publishing task per process sends rows in commit order and deletes them
once the broker confirmed them. A sweeper republishes, in id order, any row left unsent by a
crash or a broker outage. Delivery is at-least-once: a row can be published twice if a process
dies between the confirm and the delete, so subscribers de-duplicate on `message_id`.

Order per run across processes: a flow run's state changes carry the run as `ordering_key`, and
a transition's row comes back with the ids of the run's older rows still in the table (`after`).
If any of those is not in this process's own queue (another tracker process wrote it and has
not sent it yet), the row is held: the sweeper sends it once no older row of its key is left.
So a subscriber sees each run's first copies in order, however many trackers run.

The loops cannot die: an error nobody foresaw is logged, the rows it left half-done go back to
the sweeper, and the loop starts again after a capped, jittered backoff (`_keep_running`).
`stop()` never raises, so the context behind it always gets to close the broker and the pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from baton._amqp import Returned
from baton._tracing import TRACEPARENT
from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD

from ..db.types import Connection
from ..metrics import OUTBOX_PUBLISHED
from .publisher import Publisher, json_properties

log = logging.getLogger(__name__)

_BATCH = 500
_HELD_RETRY = 0.05  # seconds between looks at a held row's older sibling
_DELETE_WINDOW = 0.02  # seconds confirmed rows wait to be deleted together
_RESTART_BACKOFF = 2.0  # seconds, at most, before a failed loop starts again


class OutboxPublishFailed(Exception):
    """The broker did not take every row; `done` are the ones that went out."""

    def __init__(self, done: list[int]) -> None:
        super().__init__(f"{len(done)} sent before the failure")
        self.done = done


# Named tuples, not frozen dataclasses: ingest makes two per reported state, and a frozen
# dataclass's __init__ costs three times a tuple's.
class OutboxMessage(NamedTuple):
    exchange: str
    routing_key: str
    message_id: UUID
    body: bytes
    mandatory: bool = False
    ordering_key: UUID | None = None  # rows with the same key go out in id order
    traceparent: str | None = None  # published as the W3C trace context header (traces on)


class OutboxRow(NamedTuple):
    id: int
    message: OutboxMessage
    after: tuple[int, ...] = ()  # older rows of the same ordering key, as the writer saw them


def _compact(row: OutboxRow) -> OutboxRow:
    """The row with a body that holds only its own length. orjson's bytes keep the capacity of
    its write buffer: a 667-byte state change occupies 8 KB, so 10,000 queued rows (a horizon
    fill, a burst of task-run states) held 120 MB where 10 MB would do. A copy costs < 1 us."""
    body = row.message.body
    return row._replace(message=row.message._replace(body=memoryview(body).tobytes()))


class Outbox:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        publisher: Publisher,
        *,
        sweep_interval: float = 1.0,
        sweep_age: float = 2.0,
        max_queued: int = 10_000,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._sweep_interval = sweep_interval
        self._sweep_age = sweep_age
        # Past this many committed rows waiting to go out, publishing is left to the sweeper,
        # which reads them back from the table: a burst costs rows in PostgreSQL, not memory.
        self._max_queued = max_queued
        self._queue: asyncio.Queue[OutboxRow] = asyncio.Queue()
        # Ids of the rows in this process's own pipeline, queued until their delete: a newer row
        # of the same key need not wait for these, the queue sends them first.
        self._mine: set[int] = set()
        # Rows waiting for an older row of their key that another process has yet to send.
        self._held: set[int] = set()
        self._held_waiting = asyncio.Event()
        # The rows the sweeper is publishing now.
        self._sweeping: set[int] = set()
        # Rows the broker confirmed, deleted a few at a time rather than one statement each.
        self._sent: list[int] = []
        self._sent_waiting = asyncio.Event()
        # Set when a publish failed: newer rows then wait for the sweeper, which keeps id order.
        self._backlog = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    async def add(conn: Connection, messages: list[OutboxMessage]) -> list[OutboxRow]:
        """Insert rows inside the caller's transaction. Returns them, for `sent_after_commit`."""
        if not messages:
            return []
        ids = await conn.fetch(
            """INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory, ordering_key,
                   traceparent)
               SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[], $5::bool[],
                   $6::uuid[], $7::text[])
               RETURNING id""",
            [m.exchange for m in messages],
            [m.routing_key for m in messages],
            [m.message_id for m in messages],
            [m.body for m in messages],
            [m.mandatory for m in messages],
            [m.ordering_key for m in messages],
            [m.traceparent for m in messages],
        )
        return [OutboxRow(r["id"], m) for r, m in zip(ids, messages, strict=True)]

    def sent_after_commit(self, rows: list[OutboxRow]) -> None:
        """Hand committed rows to the publishing task. Never blocks, never raises."""
        if self._backlog.is_set():
            return  # the sweeper will send them after the older ones
        if self._queue.qsize() + len(rows) > self._max_queued:
            log.info("outbox: more than %d messages waiting; the sweeper takes over", self._max_queued)
            self._enter_backlog()
            return
        for row in rows:
            if row.id in self._sweeping:
                continue  # the sweeper read it between its commit and now: it is sending it
            if not self._mine.issuperset(row.after):
                # an older change of the same run is another process's to send: wait for it
                self._held.add(row.id)
                self._held_waiting.set()
                continue
            self._mine.add(row.id)
            self._queue.put_nowait(_compact(row))

    def _enter_backlog(self) -> None:
        """Leave every queued row to the sweeper, which sends the table in id order. The batch
        the publishing task holds stays its own until it knows which went out: the sweeper
        sending those too published 500 messages twice in a burst of 60,000."""
        self._backlog.set()
        while not self._queue.empty():
            self._mine.discard(self._queue.get_nowait().id)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(_keep_running("publish", self._publish_loop), name="outbox-publish"),
            asyncio.create_task(_keep_running("delete", self._delete_loop), name="outbox-delete"),
            asyncio.create_task(_keep_running("sweep", self._sweep_loop), name="outbox-sweep"),
        ]

    @property
    def running(self) -> bool:
        """Every loop is alive (they restart themselves; only `stop()` ends them)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop(self, *, grace: float = 5.0) -> None:
        """Send what is queued for up to `grace`, then end the loops. Idempotent; never raises:
        what is left unsent stays in the table for the next process's sweeper."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain(), grace)
        try:
            await asyncio.wait_for(self._delete_sent(), grace)
        except Exception as exc:  # they are sent: at worst they go out once more
            log.warning("outbox: sent rows not deleted at shutdown (%r); they will be sent again", exc)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task, result in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(result, Exception):
                log.error("outbox: %s ended with an error", task.get_name(), exc_info=result)

    async def _drain(self) -> None:
        """Until every row this process queued is sent and deleted, or left to the sweeper."""
        while self._mine or not self._queue.empty():
            await asyncio.sleep(0.01)

    async def _publish(self, rows: list[OutboxRow]) -> list[int]:
        """Publish rows in order; return the ids that are done with (confirmed or parked).

        Raises if the broker is away, after every row that did go out is known. A row the
        broker returned as unroutable (its queue was deleted) is parked in `baton.dead` with the
        reason, so it cannot block the rows behind it.
        """
        # Write every publish in order (frames go out in call order), then await the confirms.
        confirms = [
            await self._publisher.send(
                r.message.exchange,
                r.message.routing_key,
                r.message.body,
                json_properties(
                    message_id=r.message.message_id,
                    headers={TRACEPARENT: r.message.traceparent} if r.message.traceparent else None,
                ),
                mandatory=r.message.mandatory,
            )
            for r in rows
        ]
        results = await self._publisher.settle(confirms)
        done: list[int] = []
        failure: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if result is None:
                done.append(row.id)
            elif isinstance(result, Returned) and failure is None:
                try:
                    await self._park(row, f"unroutable: {result}")
                except Exception as exc:  # baton.dead is away too: the row stays in the table
                    failure = exc
                else:
                    done.append(row.id)
            elif failure is None:
                failure = result
        OUTBOX_PUBLISHED.inc(len(done))
        if failure is not None:
            raise OutboxPublishFailed(done) from failure
        return done

    async def _park(self, row: OutboxRow, reason: str) -> None:
        log.warning(
            "outbox message to %s/%s parked in baton.dead: %s",
            row.message.exchange,
            row.message.routing_key,
            reason,
        )
        await self._publisher.publish(
            DEAD,
            row.message.routing_key,
            row.message.body,
            json_properties(
                message_id=row.message.message_id,
                headers={
                    DeadLetterHeaders.REASON: reason,
                    DeadLetterHeaders.ORIGINAL_EXCHANGE: row.message.exchange,
                    DeadLetterHeaders.ORIGINAL_ROUTING_KEY: row.message.routing_key,
                },
            ),
            mandatory=True,  # with no queue bound to baton.dead it would be lost: kept instead
        )

    async def _delete(self, ids: list[int], conn: Connection | None = None) -> None:
        if ids:
            await (conn or self._pool).execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)

    async def _publish_loop(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while len(rows) < _BATCH and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            try:
                done = await self._publish(rows)
            except OutboxPublishFailed as exc:
                log.warning("outbox publish failed (%r); the sweeper will resend", exc.__cause__)
                self._enter_backlog()  # rows stay in the table; keep their order there
                done = exc.done
            except BaseException:
                # which of them went out is unknown: the sweeper sends them all again, in order
                self._mine.difference_update(row.id for row in rows)
                self._enter_backlog()
                raise
            self._sent.extend(done)
            self._sent_waiting.set()
            confirmed = set(done)  # stay "mine" until deleted; the rest are the sweeper's now
            self._mine.difference_update(row.id for row in rows if row.id not in confirmed)

    async def _delete_loop(self) -> None:
        """Delete confirmed rows in batches: at most a short while after their confirm, so the
        sweeper (which waits far longer) never mistakes one for unsent."""
        while True:
            await self._sent_waiting.wait()
            await asyncio.sleep(_DELETE_WINDOW)
            try:
                await self._delete_sent()
            except Exception:
                log.exception("could not delete sent outbox rows; they will be sent again")
                await asyncio.sleep(_DELETE_WINDOW)

    async def _delete_sent(self) -> None:
        ids, self._sent = self._sent, []
        self._sent_waiting.clear()
        try:
            await self._delete(ids)
        finally:
            # deleted or not, they are no longer queued here: a newer row of their key that
            # comes now waits for the sweeper if they are still in the table
            self._mine.difference_update(ids)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                if self._held:
                    await asyncio.sleep(_HELD_RETRY)  # an older row is still on its way
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake(), self._sweep_interval)
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox sweep failed: %r (%s)", exc.__cause__ or exc, exc)
                await asyncio.sleep(self._sweep_interval)

    async def _wake(self) -> None:
        """Until the backlog flag is up or a row is held."""
        backlog = asyncio.ensure_future(self._backlog.wait())
        held = asyncio.ensure_future(self._held_waiting.wait())
        try:
            await asyncio.wait({backlog, held}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            backlog.cancel()
            held.cancel()

    async def sweep(self) -> int:
        """Publish unsent rows in id order, none before an older row of its key. Returns how
        many were sent."""
        sent = 0
        backlog = self._backlog.is_set()
        self._held_waiting.clear()
        # rows that must wait for an older row of their key (this sweep's), and this process's
        # own: queued or on their way (a row older than the sweep age is often still in the
        # queue during a burst; sending it from here too would send it twice), or sent and not
        # yet deleted. Read again for every batch: a long sweep's rows become "mine" meanwhile.
        waiting: list[int] = []
        while True:
            blocked = [*waiting, *self._sent, *self._mine]
            async with self._pool.acquire() as conn, conn.transaction():
                records = await conn.fetch(
                    """SELECT id, exchange, routing_key, message_id, body, mandatory, ordering_key,
                              traceparent
                       FROM outbox
                       WHERE ($1 OR id = ANY($4::bigint[])
                              OR created < now() - make_interval(secs => $2))
                         AND NOT (id = ANY($5::bigint[]))
                       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
                    backlog,
                    self._sweep_age,
                    _BATCH,
                    list(self._held),
                    blocked,
                )
                if not records:
                    break
                rows = await _unblocked(conn, [_row(r) for r in records])
                sending = {r.id for r in rows}
                waiting.extend(r["id"] for r in records if r["id"] not in sending)
                failure: OutboxPublishFailed | None = None
                if rows:
                    self._sweeping = sending  # committed meanwhile by a writer of this process
                    try:
                        done = await self._publish(rows)
                    except OutboxPublishFailed as exc:  # the ones that went out are done with
                        failure, done = exc, exc.done
                    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", done)
                    self._held.difference_update(done)
                    sent += len(done)
                self._sweeping = set()
            if failure is not None:
                raise failure
        if self._held:  # another process's sweeper may have sent some of ours
            async with self._pool.acquire() as conn:
                still = await conn.fetch(
                    "SELECT id FROM outbox WHERE id = ANY($1::bigint[])", list(self._held)
                )
            self._held.intersection_update(r["id"] for r in still)
        if backlog:
            self._backlog.clear()
            log.info("outbox backlog drained (%d messages)", sent)
        return sent


async def _keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run `loop` until cancelled; whatever it raises is logged and it starts again, after a
    jittered backoff that grows to `_RESTART_BACKOFF`."""

    def logged(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.error("outbox %s loop failed; it starts again", name, exc_info=error)

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_random_exponential(multiplier=0.05, max=_RESTART_BACKOFF),
        before_sleep=logged,
    ):
        with attempt:
            await loop()


def _row(record: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        record["id"],
        OutboxMessage(
            record["exchange"],
            record["routing_key"],
            record["message_id"],
            record["body"],
            record["mandatory"],
            record["ordering_key"],
            record["traceparent"],
        ),
    )


async def _unblocked(conn: Connection, rows: list[OutboxRow]) -> list[OutboxRow]:
    """The rows (in id order) that no older row of the same key, left out of them because
    another process holds or has yet to commit it, must precede."""
    keys = {r.message.ordering_key for r in rows if r.message.ordering_key is not None}
    if not keys:
        return rows
    firsts = {
        record["ordering_key"]: record["first"]
        for record in await conn.fetch(
            """SELECT ordering_key, min(id) AS first FROM outbox
               WHERE ordering_key = ANY($1::uuid[]) AND NOT (id = ANY($2::bigint[]))
               GROUP BY ordering_key""",
            list(keys),
            [r.id for r in rows],
        )
    }
    return [
        r
        for r in rows
        if r.message.ordering_key is None
        or r.message.ordering_key not in firsts
        or firsts[r.message.ordering_key] > r.id
    ]
