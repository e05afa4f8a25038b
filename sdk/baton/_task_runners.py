"""Where submitted task runs execute: a thread pool for sync tasks, an event loop for async ones."""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

    from ._loop_thread import LoopThread

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 32


class ThreadPoolTaskRunner:
    """Runs sync task runs on up to `max_workers` threads, async ones on one event loop thread.

    Both start on first use, so a flow that submits nothing pays nothing. Each flow run uses
    its own copy (`duplicate()`).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop_thread: LoopThread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(self.max_workers)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run `fn()` on a pool thread, in a copy of the caller's context."""
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="baton-task"
                    )
        return self._executor.submit(contextvars.copy_context().run, fn)

    def submit_coroutine(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the runner's event loop thread, in a copy of the caller's context."""
        if self._loop_thread is None:
            from ._loop_thread import LoopThread

            with self._lock:
                if self._loop_thread is None:
                    self._loop_thread = LoopThread("baton-async-tasks")
        loop = self._loop_thread.loop
        context = contextvars.copy_context()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            if not result.set_running_or_notify_cancel():
                coro.close()
                return
            task = loop.create_task(coro, context=context)
            task.add_done_callback(lambda done: _copy_outcome(done, result))

        loop.call_soon_threadsafe(start)
        return result

    def shutdown(self, wait: bool = True) -> None:
        """Wait for what was submitted (or cancel what has not started, if `wait` is False)."""
        executor, loop_thread = self._executor, self._loop_thread
        self._executor = self._loop_thread = None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)
        if loop_thread is not None:
            loop_thread.stop()


def _copy_outcome(task: asyncio.Task[T], result: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        result.set_exception(concurrent.futures.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(task.result())
