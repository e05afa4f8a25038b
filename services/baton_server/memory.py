"""Giving memory back to the system after a burst.

glibc's malloc keeps the heap a process grew to. It returns memory by itself only from the top
of the heap, and a burst of ingest batches leaves live objects scattered through it: after
60,000 task-run states a server that started at 68 MB stayed at 228 MB for good, although its
objects fitted in about 100 MB. `malloc_trim(0)` hands the free pages anywhere in the heap back
(it took 8-12 ms on that heap, 0.2 ms on an idle one). So the server looks at its RSS every few
seconds and trims when it is well above the lowest it has been, unless nothing was allocated
since the last trim.

On a C library without `malloc_trim` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _load_malloc_trim()


def can_trim() -> bool:
    return _malloc_trim is not None and os.path.exists("/proc/self/statm")


def trim() -> None:
    """Return the heap's free pages to the system (glibc), or do nothing."""
    if _malloc_trim is not None:
        _malloc_trim(0)


_SETTLED = 2**20  # RSS within this of the last trim's result: nothing new to give back


def should_trim(rss: int, *, floor: int, after_last_trim: int | None, growth: int) -> bool:
    """`floor`: the lowest RSS seen (at start, or after a trim)."""
    if rss - floor < growth:
        return False
    return after_last_trim is None or rss - after_last_trim >= _SETTLED


class MemoryReleaser:
    """Trims the heap when RSS is `growth_mb` above its floor; looks every `interval` seconds.
    The trim runs in a thread: the event loop goes on meanwhile."""

    def __init__(self, *, interval: float = 2.0, growth_mb: int = 16) -> None:
        self._interval = interval
        self._growth = growth_mb * 2**20
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    def start(self) -> None:
        if can_trim():
            self._task = asyncio.create_task(self._run(rss_bytes()), name="memory-releaser")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, floor: int) -> None:
        after_last_trim: int | None = None
        while True:
            await asyncio.sleep(self._interval)
            before = rss_bytes()
            floor = min(floor, before)
            if not should_trim(before, floor=floor, after_last_trim=after_last_trim, growth=self._growth):
                continue
            await asyncio.to_thread(trim)
            after_last_trim = rss_bytes()
            floor = min(floor, after_last_trim)
            self.trims += 1
            log.debug("heap trimmed: RSS %.0f -> %.0f MB", before / 2**20, after_last_trim / 2**20)
