"""Key checks from memory: every usable key's digest, read in one query and kept fresh.

A request's key is looked up in the index, never with a query of its own, so no number of
requests (with keys valid or not) can queue on the database for their key checks:

- a key in a fresh index is answered at once;
- a key not in it may have been created since the index was read: the request waits for a read
  that started after it arrived. Reads are shared (one at a time, all waiters served by it) and
  spaced (`min_gap`), so a flood of unknown keys costs a few queries a second, whatever its size;
- a digest prefix that failed a check recently is refused without waiting for another read. A
  failure is final: a secret cannot be sent before its key exists, and the read that failed it
  started after the request arrived. Failures live in a table of their own, bounded, so they can
  never push a verified key out;
- failed checks are rate-limited by digest prefix (`throttle`): past a budget their answers
  wait, so a flood of wrong keys is slowed down instead of taking the CPU valid keys need;
- the index is re-read every `refresh_seconds`: a revoked key stops working within that. An
  index that could not be re-read for `2 x refresh_seconds` is not trusted: checks fail with
  `KeysUnavailable` (503) until the database answers again.

The process that revokes a key forgets it at once (`forget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg

from .auth import ApiKey, digest, key_from_row
from .throttle import FailureThrottle

log = logging.getLogger(__name__)

PREFIX_LENGTH = 16  # hex digits of the digest: 64 bits, one bucket per key in practice


class KeysUnavailable(Exception):
    """The keys could not be read (database down or too slow): no key can be vouched for."""


class FailedChecks:
    """Digest prefixes that failed a check, each remembered for `window` seconds; at most
    `capacity` of them (the oldest are forgotten first)."""

    def __init__(self, *, window: float, capacity: int = 10_000) -> None:
        self.window = window
        self.capacity = capacity
        self._failed: OrderedDict[str, float] = OrderedDict()

    def recent(self, prefix: str, now: float) -> bool:
        failed_at = self._failed.get(prefix)
        return failed_at is not None and now - failed_at < self.window

    def record(self, prefix: str, now: float) -> None:
        self._failed[prefix] = now
        self._failed.move_to_end(prefix)
        while len(self._failed) > self.capacity:
            self._failed.popitem(last=False)

    def clear(self) -> None:
        self._failed.clear()

    def __len__(self) -> int:
        return len(self._failed)


class KeyVerifier:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        refresh_seconds: float = 5.0,
        acquire_timeout: float = 5.0,
        min_gap: float = 0.2,
        throttle: FailureThrottle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.refresh_seconds = refresh_seconds
        self._acquire_timeout = acquire_timeout
        self._min_gap = min_gap
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._read_started: float | None = None  # when the read behind `_keys` began
        self._reading: asyncio.Task[None] | None = None
        self._reading_started = 0.0
        self._failures = FailedChecks(window=refresh_seconds)
        self._throttle = throttle or FailureThrottle()
        self._forgotten: dict[uuid.UUID, float] = {}  # revoked here, when
        self._loop: asyncio.Task[None] | None = None
        self.reads = 0  # queries made, for tests and figures

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._refresh_loop(), name="api-key refresh")

    async def stop(self) -> None:
        for task in (self._loop, self._reading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._loop = self._reading = None

    async def _refresh_loop(self) -> None:
        failing = False
        while True:
            try:
                await self._fresh_since(self._clock())
                if failing:
                    log.info("API keys read again")
                failing = False
            except KeysUnavailable as exc:
                if not failing:
                    log.warning("cannot read the API keys: %s", exc.__cause__ or exc)
                failing = True
            await asyncio.sleep(self.refresh_seconds)

    # --- checks ---------------------------------------------------------------------------

    async def verify(self, secret: str) -> ApiKey | None:
        """The key with this secret, or None if there is no usable one. Raises KeysUnavailable
        when the index is too old to vouch for anything and cannot be read now."""
        hashed = digest(secret)
        arrived = self._clock()
        if not self._trusted(arrived):
            await self._fresh_since(arrived)
        key = self._keys.get(hashed)
        if key is not None:
            return key
        prefix = hashed[:PREFIX_LENGTH]
        if not self._failures.recent(prefix, arrived):
            await self._fresh_since(arrived)  # created since the last read?
            key = self._keys.get(hashed)
            if key is not None:
                return key
            self._failures.record(prefix, self._clock())
        wait = self._throttle.delay(hashed, self._clock())
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    def forget(self, key_id: uuid.UUID) -> None:
        """A key revoked by this process stops working here at once (and a read that began
        before the revocation cannot bring it back)."""
        self._forgotten[key_id] = self._clock()
        self._keys = {h: k for h, k in self._keys.items() if k.id != key_id}

    def _trusted(self, now: float) -> bool:
        return self._read_started is not None and now - self._read_started < 2 * self.refresh_seconds

    # --- reading the index ----------------------------------------------------------------

    async def _fresh_since(self, moment: float) -> None:
        """Return once a read that started at or after `moment` has completed."""
        while self._read_started is None or self._read_started < moment:
            reading = self._reading
            if reading is None or reading.done():
                reading = self._reading = asyncio.create_task(self._read(), name="api-key read")
            # shielded: a waiter that gives up does not cancel the read the others wait for
            await asyncio.shield(reading)

    async def _read(self) -> None:
        wait = self._reading_started + self._min_gap - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        started = self._reading_started = self._clock()
        self.reads += 1
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                rows = await conn.fetch(
                    "SELECT id, name, key_hash, scopes FROM api_keys WHERE NOT revoked",
                    timeout=self._acquire_timeout,
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise KeysUnavailable("the API keys could not be read from the database") from exc
        # revoked here after this read began: it may still have seen them usable
        self._forgotten = {i: at for i, at in self._forgotten.items() if at >= started}
        self._keys = {
            row["key_hash"]: key for row in rows if (key := key_from_row(row)).id not in self._forgotten
        }
        self._read_started = started
