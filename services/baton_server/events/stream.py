"""The live stream: stored events, as they commit, to every `GET /api/events/stream` client.

One `StreamHub` per API process. While any client is connected it LISTENs on `baton_events`:
the store NOTIFYs the range of `seq` each batch took, delivered when the batch commits, and the
hub reads those rows once and hands each to the clients whose filter matches. A client sees
only what is stored, so what it sees it can read back.

A client that reconnects (`Last-Event-ID`, which browsers send by themselves, or `since`) is
first sent what was stored since: everything received from `backfill_seconds` before its last
event on, because concurrent batches can commit out of `seq` order. It may see an event again
(de-duplicate on `id`); it misses none. A client too slow to keep up is told so
(`event: overflow`) and disconnected; it reconnects and backfills. When the server stops, every
stream ends at once (`event: shutdown`, with a `retry:` hint) instead of holding the shutdown
for its graceful timeout; the client reconnects, with `Last-Event-ID`, to the next server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from .store import NOTIFY_CHANNEL, EventFilter, event_json, read_since, read_span, received_of

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# What a client is told when the server stops: reconnect after this long (the SSE `retry:` field).
SHUTDOWN_RETRY_MS = 2000
SHUTDOWN_FRAME = (
    b"retry: %d\nevent: shutdown\ndata: the server is stopping: reconnect\n\n" % SHUTDOWN_RETRY_MS
)
_BACKFILL_PAGE = 1000
_RECENT = 100_000  # seqs remembered, to drop a row two overlapping notifications both named


@dataclass(eq=False)
class Subscription:
    wanted: EventFilter
    queue: asyncio.Queue[tuple[int, str, bytes] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=10_000)
    )
    overflowed: bool = False

    def offer(self, item: tuple[int, str, bytes]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()  # make room for the end-of-stream mark
            self.queue.put_nowait(None)

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


def frame(seq: int, body: bytes) -> bytes:
    return b"id: %d\nevent: event\ndata: %s\n\n" % (seq, body)


def encode(row: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    event = event_json(row)
    return event, orjson.dumps(event)


class StreamHub:
    def __init__(self, pool: asyncpg.Pool[Any], dsn: str, *, backfill_seconds: float = 10.0) -> None:
        self._pool = pool
        self._dsn = dsn
        self.backfill = timedelta(seconds=backfill_seconds)
        self._subscribers: set[Subscription] = set()
        self._listener: asyncpg.Connection[Any] | None = None
        self._starting = asyncio.Lock()
        self._spans: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._recent: OrderedDict[int, None] = OrderedDict()
        self.stopping = False

    async def subscribe(self, wanted: EventFilter) -> Subscription:
        subscription = Subscription(wanted)
        if self.stopping:  # a stream asked for as the server stops ends at once
            subscription.close()
            return subscription
        await self._listen()
        self._subscribers.add(subscription)
        return subscription

    def end_streams(self) -> None:
        """The server is stopping: every stream ends now, and any opened from here on at once."""
        self.stopping = True
        for subscription in list(self._subscribers):
            subscription.close()

    async def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        if not self._subscribers:
            await self._unlisten()

    async def _listen(self) -> None:
        async with self._starting:
            if self._listener is not None and not self._listener.is_closed():
                return
            listener = await asyncpg.connect(self._dsn)
            await listener.add_listener(NOTIFY_CHANNEL, self._notified)
            listener.add_termination_listener(self._lost)
            self._listener = listener
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read_spans(), name="event-stream")

    async def _unlisten(self) -> None:
        async with self._starting:
            listener, self._listener = self._listener, None
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
                self._reader = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        first, _, last = str(payload).partition("-")
        with contextlib.suppress(ValueError):
            self._spans.put_nowait((int(first), int(last)))

    def _lost(self, _conn: Any) -> None:
        """No more notifications: end every stream; each client reconnects and backfills."""
        log.warning("event stream: lost the LISTEN connection; clients will reconnect")
        self._listener = None
        for subscription in list(self._subscribers):
            subscription.close()

    async def _read_spans(self) -> None:
        while True:
            first, last = await self._spans.get()
            while not self._spans.empty():  # read adjacent spans together
                more_first, more_last = self._spans.get_nowait()
                first, last = min(first, more_first), max(last, more_last)
            try:
                async with self._pool.acquire() as conn:
                    rows = await read_span(conn, first, last)
            except Exception as exc:
                log.warning("event stream: reading stored events failed (%s); clients will reconnect", exc)
                for subscription in list(self._subscribers):
                    subscription.close()
                continue
            self._fan_out(rows)

    def _fan_out(self, rows: list[Mapping[str, Any]]) -> None:
        for row in rows:
            seq = row["seq"]
            if seq in self._recent:
                continue
            self._recent[seq] = None
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
            event, body = encode(row)
            for subscription in self._subscribers:
                if subscription.wanted.matches(event):
                    subscription.offer((seq, event["id"], body))

    async def close(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()
        await self._unlisten()

    async def start_of_backfill(self, last_event_id: str | None, since: datetime | None) -> datetime | None:
        """Where a (re)connecting client's backfill starts: before its last event, or `since`."""
        if last_event_id and last_event_id.isdigit():
            async with self._pool.acquire() as conn:
                received = await received_of(conn, int(last_event_id))
            if received is not None:
                return received - self.backfill
        return since

    async def sse(self, wanted: EventFilter, start: datetime | None) -> AsyncIterator[bytes]:
        """The stream of one client: the backfill from `start`, then the live events."""
        subscription = await self.subscribe(wanted)
        sent: set[str] = set()
        try:
            yield b": connected\n\n"
            if start is not None:
                after = 0
                while not self.stopping:
                    async with self._pool.acquire() as conn:
                        rows = await read_since(conn, wanted, start, after=after, limit=_BACKFILL_PAGE)
                    for row in rows:
                        event, body = encode(row)
                        sent.add(event["id"])
                        yield frame(row["seq"], body)
                    if len(rows) < _BACKFILL_PAGE:
                        break
                    after = rows[-1]["seq"]
            while True:
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    if subscription.overflowed:
                        yield b"event: overflow\ndata: too slow: reconnect to backfill\n\n"
                    elif self.stopping:
                        yield SHUTDOWN_FRAME
                    return
                seq, event_id, body = item
                if sent:
                    if event_id in sent:
                        continue  # sent by the backfill already
                yield frame(seq, body)
        finally:
            await self.unsubscribe(subscription)
