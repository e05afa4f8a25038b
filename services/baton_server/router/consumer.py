"""The router's consumer of `baton.router` (bound `#` on `baton.events`), with group commit.

Not one task per message (as the event store's consumer): each delivery is matched in the
callback that receives it. A message whose routing key no trigger names is settled at once,
without being decoded: that is most events, and what keeps the router's cost per event low. The
others are decoded and admitted as the event store does (a message refused there is the store's
to dead-letter; here it is only acked), matched on their labels, and handed to the applier,
which applies the events that arrive together in one transaction (engine.py) and settles them
once it has committed. Acks go out in delivery order, many in one `basic.ack` (AckWindow).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg
import orjson

from baton import _tracing
from baton._amqp import Delivery, Link
from baton_schemas.topology import ROUTER_QUEUE

from ..broker.consumer import AckPolicy, DeadLetter
from ..broker.publisher import Publisher
from ..db.outage import database_down
from ..events import cloudevents
from ..events.acks import WindowedConsumer
from ..events.admission import Admission
from ..events.ingest import admit_delivery_event
from ..metrics import ROUTER_EVENTS, ROUTER_MATCH_SECONDS, observe_since
from .engine import Matched
from .index import NameIndex

MATCHED = ROUTER_EVENTS.labels("matched")
UNMATCHED = ROUTER_EVENTS.labels("unmatched")
log = logging.getLogger(__name__)

Apply = Callable[[list[Matched]], Awaitable[None]]
_RETRIES = 3  # a batch that deadlocked with another router's is applied again at once


class Settle(Protocol):
    def applied(self, tokens: Sequence[Delivery]) -> None:
        """These events' effects committed (or had before)."""

    def failed(self, token: Delivery, exc: BaseException) -> None:
        """This event was not applied: DeadLetter (never will be), or another error (later)."""


class Applier:
    """Group commit: the first event of a quiet moment is applied at once; those that arrive
    meanwhile go together in the next transaction (up to `max_batch`). While the database is
    away a batch is tried again with capped, jittered backoff, its events held unacked (so the
    broker sends no more once every prefetched one is held)."""

    def __init__(
        self,
        apply: Apply,
        *,
        max_batch: int,
        max_statements: int = 2,
        pause_backoff_max: float = 5.0,
    ) -> None:
        self._apply = apply
        self._settle: Settle | None = None
        self._max_batch = max_batch
        self._max_statements = max_statements
        self._pause_backoff_max = pause_backoff_max
        self._waiting: deque[tuple[Matched, Delivery]] = deque()
        self._running = 0
        self._in_transactions = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0

    def settles_with(self, settle: Settle) -> None:
        self._settle = settle

    @property
    def pending(self) -> int:
        """Events submitted and not settled yet (waiting, or in a transaction)."""
        return len(self._waiting) + self._in_transactions

    def submit(self, matched: Matched, token: Delivery) -> None:
        """Apply `matched`; `token` is settled once that committed (or failed)."""
        self._waiting.append((matched, token))
        if self._running < self._max_statements:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            waiting = self._waiting
            while waiting:
                count = min(len(waiting), self._max_batch)
                batch = [waiting.popleft() for _ in range(count)]
                self._in_transactions += count
                try:
                    await self._run(batch)
                finally:
                    self._in_transactions -= count
        finally:
            self._running -= 1

    async def _run(self, batch: list[tuple[Matched, Delivery]]) -> None:
        assert self._settle is not None
        self.batches += 1
        deadlocks = paused = 0
        while True:
            try:
                await self._apply([m for m, _ in batch])
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                deadlocks += 1
                if deadlocks < _RETRIES:
                    continue
                self._fail(batch, RuntimeError("deadlocked with another router; redelivering"))
                return
            except asyncpg.DataError:
                # one event holds a value PostgreSQL refuses: each alone, so only it fails
                for item in batch:
                    await self._alone(item)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not database_down(exc):
                    self._fail(batch, exc)
                    return
                paused += 1
                if paused == 1:
                    log.warning("router: paused, the database is away (%r); retrying", exc)
                await asyncio.sleep(random.uniform(0, min(self._pause_backoff_max, 0.5 * 2**paused)))
                continue
            if paused:
                log.warning("router: the database is back; applying events again")
            self._settle.applied([token for _, token in batch])
            return

    async def _alone(self, item: tuple[Matched, Delivery]) -> None:
        assert self._settle is not None
        matched, token = item
        try:
            await self._apply([matched])
        except asyncpg.DataError as exc:
            self._settle.failed(token, DeadLetter(f"the router cannot apply this event: {exc}"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._settle.failed(token, exc)
        else:
            self._settle.applied([token])

    def _fail(self, batch: list[tuple[Matched, Delivery]], exc: BaseException) -> None:
        assert self._settle is not None
        for _, token in batch:
            self._settle.failed(token, exc)

    async def close(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` for what was submitted to be settled, then stop trying: what is
        left unsettled stays unacknowledged, and the broker delivers it again."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)


class RouterConsumer(WindowedConsumer):
    queue_name = ROUTER_QUEUE

    def __init__(
        self,
        link: Link,
        publisher: Publisher,
        index: NameIndex,
        admission: Admission,
        applier: Applier,
        *,
        prefetch: int,
    ) -> None:
        super().__init__(link, publisher, prefetch=prefetch)
        self._index = index
        self._admission = admission
        self._applier = applier
        applier.settles_with(self)
        self.seen = 0
        self.matched = 0

    def _match(self, message: Delivery) -> Matched | None:
        if not self._index.candidates(message.routing_key) or not self._may_hit(message):
            return None
        try:
            event = admit_delivery_event(message, self._admission)
        except DeadLetter as exc:
            log.debug("ignoring an event the store refuses: %s", exc.reason)
            return None
        fields: dict[str, Any] = event.model_dump(mode="json")
        hits = self._index.hits(fields)
        if not hits:
            return None
        return Matched(fields, event.id, tuple(hits), _tracing.extract(message.headers))

    def _may_hit(self, message: Delivery) -> bool:
        """Whether the event's labels can match a trigger, judged on its JSON as sent, before
        the cost of validating it: most events a trigger names are not for it (every state
        change is named by a "when flow X fails" trigger). Validation changes no name or label
        (a label is a string or the event is refused), so an event found here to match nothing
        matches nothing once valid either. True when unsure: a CloudEvent, a body that is not a
        Baton event's shape."""
        if cloudevents.is_amqp_cloudevent(message.properties.content_type, message.headers):
            return True
        try:
            raw = orjson.loads(message.body)
        except orjson.JSONDecodeError:
            return True  # for the validation to say why
        if not (
            isinstance(raw, dict)
            and raw.get("event") == message.routing_key
            and isinstance(raw.get("resource"), dict)
            and isinstance(raw.get("related", []), list)
        ):
            return True
        try:
            return bool(self._index.hits(raw))
        except (AttributeError, TypeError):  # a label that is not a string, say
            return True

    async def handle(self, message: Delivery) -> None:  # pragma: no cover - see _on_delivery
        raise NotImplementedError("the router's consumer settles through its applier")

    def _on_delivery(self, message: Delivery) -> None:
        self.seen += 1
        self._acks.received(message)
        started = time.perf_counter()
        try:
            matched = self._match(message)
        except Exception as exc:  # a bug, not the message's fault: it comes again
            log.exception("matching an event failed; it will be redelivered")
            self._settle_alone(message, AckPolicy.REQUEUE, repr(exc))
            return
        observe_since(ROUTER_MATCH_SECONDS, started)
        if matched is None:
            UNMATCHED.inc()
            self._acks.settled((message,), ack=True)
            return
        self.matched += 1
        MATCHED.inc()
        self._applier.submit(matched, message)

    # --- Settle: what the applier says of each event ------------------------------------------

    def applied(self, tokens: Sequence[Delivery]) -> None:
        self._acks.settled(tokens, ack=True)

    def failed(self, token: Delivery, exc: BaseException) -> None:
        if isinstance(exc, DeadLetter):
            self._settle_alone(token, AckPolicy.DEAD_LETTER, exc.reason)
        else:
            log.error("applying an event failed (%r); it will be redelivered", exc)
            self._settle_alone(token, AckPolicy.REQUEUE, repr(exc))

    async def _close_pipeline(self, timeout: float) -> None:
        await self._applier.close(timeout=timeout)
