"""The emitter behind `emit_event`: a bounded buffer, a background thread, batches.

An event is buffered as its name, id and JSON. The thread sends a batch when it fills
(`BATCH_SIZE`) and at least every `flush_interval`: over AMQP, one confirmed, persistent
message per event on `baton.events` (its name the routing key, the connection's user as
`user_id`); over HTTP, one `POST /api/events` of the batch. A batch the broker or server did not
take stays buffered, in order, and is retried with capped, jittered backoff (storing is
idempotent on the ids, so a retried batch is stored once). A batch the server refuses (4xx) is
dropped with a warning: sending it again would never work. Past `max_buffered` events the
oldest are dropped, with a warning.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_random_exponential,
)

from baton_schemas.topology import EVENTS

from .._amqp import PERSISTENT, AmqpError, Channel, Link, Properties, login_user
from .._loop_thread import LoopThread
from .._transport import RequestRejected, TransportUnavailable
from .._transport.http import BatonClient

if TYPE_CHECKING:
    from .._settings import ClientSettings

logger = logging.getLogger("baton.emit_event")

BATCH_SIZE = 500
_Item = tuple[str, UUID, bytes]  # name, id, JSON


class EventSender(Protocol):
    async def send(self, batch: list[_Item]) -> None:
        """Deliver every event of the batch or raise (TransportUnavailable: try again)."""

    async def close(self) -> None: ...


class AmqpSender:
    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._user = login_user(url)
        self._link: Link | None = None
        self._channel: Channel | None = None

    async def _ready(self) -> Channel:
        if self._link is None:
            link = Link(self._url, name="baton-events")
            await link.connect(timeout=self._timeout)
            self._link = link
        if self._channel is None or not self._channel.is_open:
            await asyncio.wait_for(self._link.up.wait(), self._timeout)
            self._channel = await self._link.connection.channel(confirms=True)
        return self._channel

    async def send(self, batch: list[_Item]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                channel = await self._ready()
                await channel.writable()  # a full socket or a blocked broker: wait, do not pile up
                confirms = [
                    channel.publish(
                        EVENTS,
                        name,
                        body,
                        Properties(
                            content_type="application/json",
                            message_id=str(event_id),
                            delivery_mode=PERSISTENT,
                            app_id="baton-sdk",
                            user_id=self._user,
                        ),
                        mandatory=True,
                    )
                    for name, event_id, body in batch
                ]
                await asyncio.gather(*(c for c in confirms if c is not None))  # a confirm-mode channel
        except (AmqpError, OSError, TimeoutError, ValueError) as exc:
            self._channel = None
            raise TransportUnavailable(f"publishing {len(batch)} events failed: {exc!r}") from exc

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()


class HttpSender:
    def __init__(self, api_url: str, api_key: str | None, timeout: float) -> None:
        self._api_url, self._api_key, self._timeout = api_url, api_key, timeout
        self._client: BatonClient | None = None

    async def send(self, batch: list[_Item]) -> None:
        if self._client is None:
            self._client = BatonClient(self._api_url, self._api_key, timeout=self._timeout)
        body = b"[" + b",".join(item[2] for item in batch) + b"]"
        await self._client._request("POST", "/events", body=body)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class EventEmitter:
    def __init__(
        self,
        sender: EventSender | None,
        *,
        max_buffered: int = 100_000,
        flush_interval: float = 1.0,
        close_timeout: float = 10.0,
        backoff_max: float = 10.0,
    ) -> None:
        self._sender = sender
        self.enabled = sender is not None
        self._max_buffered = max_buffered
        self._flush_interval = flush_interval
        self._close_timeout = close_timeout
        self._backoff_max = backoff_max
        self._buffer: deque[_Item] = deque()
        self._thread = LoopThread("baton-events")
        self._started = False
        self._closed = False
        self._start_lock = threading.Lock()
        self._wakeup: asyncio.Event | None = None
        self._send_lock: asyncio.Lock | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0

    # --- any thread ---------------------------------------------------------------------------

    def emit(self, name: str, event_id: UUID, body: bytes) -> None:
        if not self.enabled or self._closed:
            return
        if len(self._buffer) >= self._max_buffered:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("Baton's event buffer is full (%d): dropping the oldest", self._max_buffered)
        self._buffer.append((name, event_id, body))
        self._ensure_started()
        if len(self._buffer) >= BATCH_SIZE:
            self._thread.call_soon(self._wake)

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self, timeout: float) -> bool:
        if not self._started or self._closed:
            return not self._buffer
        try:
            return self._thread.submit(self._drain(time.monotonic() + timeout)).result(timeout + 5)
        except Exception:
            return False

    def close(self, timeout: float | None = None) -> None:
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        if not started:
            return
        wait = self._close_timeout if timeout is None else timeout
        try:
            self._thread.submit(self._shutdown(time.monotonic() + wait)).result(wait + 5)
        except Exception as exc:
            logger.warning("Baton's event emitter did not shut down cleanly: %r", exc)
        self._thread.stop()
        if self._buffer:
            logger.warning("Baton server unreachable: %d events were not delivered", len(self._buffer))

    def _ensure_started(self) -> None:
        if self._started:
            return
        with self._start_lock:
            if self._started or self._closed:
                return
            self._thread.submit(self._start()).result()
            self._started = True
            atexit.register(self.close)

    # --- the emitter's loop ----------------------------------------------------------------

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _start(self) -> None:
        self._wakeup = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._loop_task = asyncio.create_task(self._loop(), name="baton-events")

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._flush_interval)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self._drain(None)
            except Exception:
                logger.exception("Baton's event emitter failed to deliver a batch")

    async def _drain(self, deadline: float | None) -> bool:
        assert self._send_lock is not None and self._sender is not None
        async with self._send_lock:
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), BATCH_SIZE))]
                try:
                    await self._send(batch, deadline)
                except TransportUnavailable:
                    self._buffer.extendleft(reversed(batch))
                    return False
                except RequestRejected as exc:
                    logger.warning("Baton refused %d events: %s", len(batch), exc)
                    if exc.status in (401, 403):
                        self.enabled = False
                        self._buffer.clear()
                    continue
                except BaseException:
                    self._buffer.extendleft(reversed(batch))
                    raise
                self.sent += len(batch)
        return True

    async def _send(self, batch: list[_Item], deadline: float | None) -> None:
        assert self._sender is not None
        sender = self._sender
        stop = stop_never if deadline is None else stop_after_delay(max(0.0, deadline - time.monotonic()))
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransportUnavailable),
            wait=wait_random_exponential(multiplier=0.2, max=self._backoff_max),
            stop=stop,
            reraise=True,
        ):
            with attempt:
                await sender.send(batch)

    async def _shutdown(self, deadline: float) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        await self._drain(deadline)
        if self._sender is not None:
            try:
                await self._sender.close()
            except Exception as exc:
                logger.debug("closing the event sender failed: %r", exc)


def make_emitter(settings: ClientSettings) -> EventEmitter:
    """AMQP when a broker URL is set, HTTP when an API URL is, else one that sends nothing."""
    sender: EventSender | None = None
    if settings.broker_url:
        sender = AmqpSender(settings.broker_url, settings.request_timeout)
    elif settings.api_url:
        sender = HttpSender(settings.api_url, settings.api_key, settings.request_timeout)
    return EventEmitter(
        sender,
        max_buffered=settings.buffer_max_items,
        flush_interval=settings.flush_interval,
        close_timeout=settings.close_timeout,
    )
