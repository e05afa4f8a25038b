"""Global concurrency limits and rate limits in code, as the reference system's
`prefect.concurrency`:

    from baton import concurrency, rate_limit, arate_limit

    with concurrency("warehouse", occupy=2):      # blocks until 2 slots are free
        load()

    async with concurrency(["db", "api"], timeout_seconds=30):
        await work()

    rate_limit("partner-api")                     # blocks until the rate allows one more call
    await arate_limit("partner-api", occupy=5)

A limit is made first, by `baton concurrency-limit create NAME --limit N` (add
`--slot-decay-per-second R` for a rate limit) or the API.

- `concurrency()` holds the slots for its block under a lease that is renewed in the background
  and released on exit, also when the block raises. A process that dies stops renewing: its
  slots come back when the lease (`lease_duration`, 60 s) expires.
- `rate_limit()` takes slots that are never released: they drain at the limit's
  `slot_decay_per_second`, which spaces the calls.
- `timeout_seconds`: wait at most that long, then raise `ConcurrencySlotTimeout` (a
  `TimeoutError`); by default wait as long as it takes.
- **A name with no limit**, as in the reference system, limits nothing: the block runs at once
  and a warning names the missing limit (once per name and process). `strict=True` makes it
  an error instead: `ConcurrencyLimitNotFound`. An inactive limit also lets everything through.
- More slots than the limit has, or `rate_limit()` on a limit without a slot decay, can never
  be granted: `ConcurrencySlotAcquisitionError` at once.

The server is `BATON_API_URL` / `BATON_API_KEY` (or the profile); with none configured every
call raises `NotConfigured`. While the server is unreachable, taking slots is retried (with a
warning now and then) until `timeout_seconds`, then `TransportUnavailable`; without a timeout it
waits for the server. A release that cannot be delivered leaves the lease to expire.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from baton_schemas.concurrency import MAX_LEASE_SECONDS, ConcurrencyHolder, SlotsAcquired

from .._context import flow_run_ctx, task_run_ctx
from .._deployments import NotConfigured
from ._slots import DEFAULT_LEASE_SECONDS, RELEASE_SECONDS, Lease, SlotKeeper, keeper, process_holder

__all__ = ["arate_limit", "concurrency", "rate_limit"]

log = logging.getLogger("baton.concurrency")
T = TypeVar("T")
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _names(names: str | Sequence[str]) -> list[str]:
    found = [names] if isinstance(names, str) else list(names)
    if not found:
        raise ValueError("concurrency limits: give at least one name")
    return found


def _keeper() -> SlotKeeper:
    found = keeper()
    if found is None:
        raise NotConfigured(
            "concurrency limits live on the server: set BATON_API_URL (and BATON_API_KEY) or write "
            "them to $BATON_HOME/profile.env"
        )
    return found


def _holder() -> ConcurrencyHolder:
    task_ctx = task_run_ctx.get()
    if task_ctx is not None:
        return ConcurrencyHolder(type="task_run", id=str(task_ctx.task_run.id))
    flow_ctx = flow_run_ctx.get()
    if flow_ctx is not None:
        return ConcurrencyHolder(type="flow_run", id=str(flow_ctx.flow_run.id))
    return process_holder()


def _warn_missing(granted: SlotsAcquired) -> None:
    with _warned_lock:
        new = [name for name in granted.missing if name not in _warned]
        _warned.update(new)
    for name in new:
        log.warning(
            "There is no concurrency limit named %r: not limited. Create it with `baton "
            "concurrency-limit create %s --limit N`, or pass strict=True to make this an error.",
            name,
            name,
        )


class concurrency:  # a class used as a function, as in the reference system
    """Hold `occupy` slots of each named limit for a `with` or `async with` block (see the
    module's docstring)."""

    __slots__ = ("_entered", "_keeper", "_lease", "_request")

    def __init__(
        self,
        names: str | Sequence[str],
        occupy: int = 1,
        timeout_seconds: float | None = None,
        *,
        lease_duration: float = DEFAULT_LEASE_SECONDS,
        strict: bool = False,
    ) -> None:
        if occupy < 1:
            raise ValueError(f"occupy must be at least 1, not {occupy}")
        if not 0 < lease_duration <= MAX_LEASE_SECONDS:
            raise ValueError(f"lease_duration must be more than 0 and at most {MAX_LEASE_SECONDS:g} seconds")
        self._request = (_names(names), occupy, timeout_seconds, lease_duration, strict)
        self._keeper: SlotKeeper | None = None
        self._lease: Lease | None = None
        self._entered = False

    def _submit(self) -> Future[tuple[SlotsAcquired, Lease | None]]:
        if self._entered:  # one lease per object: a second holder would lose the first's
            raise RuntimeError("this concurrency(...) is already held: make one per block")
        names, occupy, timeout, lease_seconds, strict = self._request
        slots = self._keeper = _keeper()
        taking = slots.acquire(
            names,
            occupy,
            "concurrency",
            strict=strict,
            holder=_holder(),
            timeout_seconds=timeout,
            lease_seconds=lease_seconds,
        )
        future = slots.submit(taking)
        self._entered = True
        return future

    def __enter__(self) -> None:
        future = self._submit()
        try:
            granted, self._lease = _wait(future)
        except BaseException:
            self._entered = False
            raise
        _warn_missing(granted)

    def __exit__(self, *exc: object) -> None:
        lease, self._lease, self._entered = self._lease, None, False
        if lease is not None and self._keeper is not None:
            try:
                self._keeper.submit(self._keeper.release(lease)).result(RELEASE_SECONDS * 2)
            except TimeoutError:  # never hide what the block raised; the lease expires
                log.warning(
                    "Releasing the slots of %s took too long: they come back when the lease expires",
                    lease.limits,
                )

    async def __aenter__(self) -> None:
        future = self._submit()
        try:
            granted, self._lease = await asyncio.wrap_future(future)  # cancelled with the caller
        except BaseException:
            self._entered = False
            raise
        _warn_missing(granted)

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        lease, self._lease, self._entered = self._lease, None, False
        if lease is not None and self._keeper is not None:
            await asyncio.shield(asyncio.wrap_future(self._keeper.submit(self._keeper.release(lease))))


def _wait(future: Future[T]) -> T:
    """The future's result, for sync code; interrupted (Ctrl-C), the wait stops asking."""
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def _rate_limit(
    names: str | Sequence[str], occupy: int, timeout: float | None, strict: bool
) -> Future[tuple[SlotsAcquired, Lease | None]]:
    if occupy < 1:
        raise ValueError(f"occupy must be at least 1, not {occupy}")
    slots = _keeper()
    taking = slots.acquire(
        _names(names), occupy, "rate_limit", strict=strict, holder=_holder(), timeout_seconds=timeout
    )
    return slots.submit(taking)


def rate_limit(
    names: str | Sequence[str], occupy: int = 1, timeout_seconds: float | None = None, *, strict: bool = False
) -> None:
    """Block until each named rate limit has room for `occupy` more slots, and take them."""
    granted, _ = _wait(_rate_limit(names, occupy, timeout_seconds, strict))
    _warn_missing(granted)


async def arate_limit(
    names: str | Sequence[str], occupy: int = 1, timeout_seconds: float | None = None, *, strict: bool = False
) -> None:
    """`rate_limit` for async code."""
    granted, _ = await asyncio.wrap_future(_rate_limit(names, occupy, timeout_seconds, strict))
    _warn_missing(granted)
