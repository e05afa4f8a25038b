"""Taking, holding and giving back slots of the server's concurrency limits, for this process.

One `SlotKeeper` per process and server, with its own event loop on a daemon thread: the HTTP
calls, the long-polling waits for slots and the renewal of every held lease run there, so a
lease stays renewed while the code holding it blocks (sync code, or async code that blocks its
loop). Sync callers wait on the returned `concurrent.futures.Future`; async callers await it.

A wait for slots is the server's: `POST /concurrency_limits/acquire` holds the request up to
`MAX_WAIT_SECONDS` and is woken when slots are released, so asking again at once after a 423 is
not a busy loop. A held lease is renewed every third of its length; a holder that dies stops
renewing, and its slots come back when the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from uuid import UUID

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_random_exponential,
)

from baton_schemas.concurrency import (
    MAX_WAIT_SECONDS,
    AcquireSlots,
    ConcurrencyHolder,
    SlotsAcquired,
    SlotsUnavailable,
)

from .._exceptions import ConcurrencyLimitNotFound, ConcurrencySlotAcquisitionError, ConcurrencySlotTimeout
from .._loop_thread import LoopThread
from .._settings import ClientSettings
from .._transport import RequestRejected, TransportUnavailable
from .._transport.http import BatonClient

log = logging.getLogger("baton.concurrency")
T = TypeVar("T")
Mode = Literal["concurrency", "rate_limit"]

DEFAULT_LEASE_SECONDS = 60.0
RELEASE_SECONDS = 10.0  # a release that cannot be delivered by then is left to expire


@dataclass(slots=True)
class Lease:
    """Slots held: renewed in the background until released."""

    id: UUID
    slots: int
    limits: list[str]
    lease_seconds: float
    renewer: asyncio.Task[None] | None = field(default=None, repr=False)
    lost: bool = False


def _unreachable(state: RetryCallState) -> None:
    if state.attempt_number in (1, 10) or state.attempt_number % 50 == 0:  # not every try
        outcome = state.outcome
        log.warning(
            "Concurrency slots: the server is unavailable (%s); trying again",
            outcome.exception() if outcome is not None else "?",
        )


def process_holder() -> ConcurrencyHolder:
    return ConcurrencyHolder(type="process", id=f"{socket.gethostname()}:{os.getpid()}"[:200])


class SlotKeeper:
    """Slots of the limits of one server (see the module's docstring)."""

    def __init__(self, settings: ClientSettings) -> None:
        assert settings.api_url is not None
        self._settings = settings
        self._thread = LoopThread("baton-concurrency")
        self._client: BatonClient | None = None

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the keeper's loop."""
        return self._thread.submit(coro)

    def _api(self) -> BatonClient:
        if self._client is None:  # made on the keeper's loop, which its connections belong to
            settings = self._settings
            assert settings.api_url is not None
            self._client = BatonClient(settings.api_url, settings.api_key, timeout=settings.request_timeout)
        return self._client

    def _retrying(self, deadline: float | None) -> AsyncRetrying:
        stop = stop_never if deadline is None else stop_after_delay(max(deadline - time.monotonic(), 0.0))
        return AsyncRetrying(
            retry=retry_if_exception_type(TransportUnavailable),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            stop=stop,
            reraise=True,
            before_sleep=_unreachable,
        )

    async def try_once(
        self,
        names: Sequence[str],
        slots: int,
        mode: Mode,
        *,
        strict: bool,
        holder: ConcurrencyHolder | None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = 0.0,
        retry_until: float | None = None,
    ) -> SlotsAcquired | SlotsUnavailable:
        """One request for slots (retried while the server is unreachable, until `retry_until`)."""
        request = AcquireSlots(
            names=list(names),
            slots=slots,
            mode=mode,
            lease_seconds=lease_seconds,
            wait_seconds=min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS),
            strict=strict,
            holder=holder,
        )
        try:
            async for attempt in self._retrying(retry_until):
                with attempt:
                    return await self._api().acquire_slots(request)
        except RequestRejected as exc:
            if exc.status == 404:
                raise ConcurrencyLimitNotFound(
                    f"{exc.detail} (create it: `baton concurrency-limit create NAME --limit N`)"
                ) from None
            raise ConcurrencySlotAcquisitionError(exc.detail) from None
        raise AssertionError("unreachable: tenacity reraises")

    async def attempt(
        self,
        names: Sequence[str],
        slots: int,
        mode: Mode,
        *,
        strict: bool,
        holder: ConcurrencyHolder | None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = 0.0,
        retry_until: float | None = None,
    ) -> tuple[SlotsAcquired | SlotsUnavailable, Lease | None]:
        """`try_once`, holding the lease if the slots were granted."""
        answer = await self.try_once(
            names,
            slots,
            mode,
            strict=strict,
            holder=holder,
            lease_seconds=lease_seconds,
            wait_seconds=wait_seconds,
            retry_until=retry_until,
        )
        if isinstance(answer, SlotsAcquired):
            return answer, self.hold(answer, slots, lease_seconds)
        return answer, None

    async def acquire(
        self,
        names: Sequence[str],
        slots: int,
        mode: Mode,
        *,
        strict: bool,
        holder: ConcurrencyHolder | None,
        timeout_seconds: float | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> tuple[SlotsAcquired, Lease | None]:
        """Wait for the slots (at most `timeout_seconds`, else `ConcurrencySlotTimeout`) and hold
        them: a lease renewed in the background until `release()` (None for rate limits, and
        when no active limit applied)."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            wait = MAX_WAIT_SECONDS if deadline is None else deadline - time.monotonic()
            answer, lease = await self.attempt(
                names,
                slots,
                mode,
                strict=strict,
                holder=holder,
                lease_seconds=lease_seconds,
                wait_seconds=wait,
                retry_until=deadline,
            )
            if isinstance(answer, SlotsAcquired):
                return answer, lease
            if deadline is not None and time.monotonic() >= deadline:
                full = ", ".join(repr(name) for name in answer.limits)
                raise ConcurrencySlotTimeout(
                    f"no {slots} free slot(s) of {full} within {timeout_seconds:g} second(s)"
                )

    def hold(self, granted: SlotsAcquired, slots: int, lease_seconds: float) -> Lease | None:
        """Start renewing a granted lease (on the keeper's loop)."""
        if granted.lease_id is None:
            return None
        lease = Lease(granted.lease_id, slots, list(granted.limits), lease_seconds)
        lease.renewer = asyncio.create_task(self._renew(lease), name=f"baton-lease-{lease.id}")
        return lease

    async def _renew(self, lease: Lease) -> None:
        every = max(lease.lease_seconds / 3, 0.1)
        while True:
            await asyncio.sleep(every)
            try:
                live = await self._api().renew_lease(lease.id, lease.lease_seconds)
            except (TransportUnavailable, RequestRejected) as exc:
                log.warning(
                    "Could not renew the concurrency lease of %s (%s); trying again", lease.limits, exc
                )
                continue
            if not live:
                lease.lost = True
                log.error(
                    "The concurrency lease on %s expired or was reset: its %d slot(s) are no longer "
                    "held (was the process paused for longer than the lease, %gs?)",
                    ", ".join(map(repr, lease.limits)),
                    lease.slots,
                    lease.lease_seconds,
                )
                return

    async def release(self, lease: Lease) -> None:
        """Stop renewing and give the slots back (a release that cannot be delivered leaves the
        lease to expire)."""
        if lease.renewer is not None:
            lease.renewer.cancel()
        try:
            async for attempt in self._retrying(time.monotonic() + RELEASE_SECONDS):
                with attempt:
                    await self._api().release_lease(lease.id)
        except (TransportUnavailable, RequestRejected) as exc:
            log.warning(
                "Could not release the concurrency lease on %s (%s): its slots come back when it expires",
                ", ".join(map(repr, lease.limits)),
                exc,
            )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._thread.running:
            try:
                self._thread.submit(client.close()).result(2.0)
            except Exception:  # closing at exit: nothing to report to
                pass
        self._thread.stop()


_lock = threading.Lock()
_keepers: dict[tuple[str, str | None], SlotKeeper] = {}


def keeper(settings: ClientSettings | None = None) -> SlotKeeper | None:
    """This process's keeper for the configured server; None if no API URL is configured."""
    settings = settings or ClientSettings.load()
    if not settings.api_url:
        return None
    key = (settings.api_url, settings.api_key)
    found = _keepers.get(key)
    if found is None:
        with _lock:
            found = _keepers.get(key)
            if found is None:
                found = _keepers[key] = SlotKeeper(settings)
    return found


def _forget_after_fork() -> None:  # a forked child has none of its parent's threads
    _keepers.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
