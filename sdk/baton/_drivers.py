"""One engine, two drivers: run logic is written once as a generator of requests, and a sync
or an async driver carries them out (sleep, wait for a future, call the user's function).

A step yields:
- a number: sleep that many seconds;
- a `concurrent.futures.Future`: wait until it is done (the step reads it afterwards);
- a `Call`: run the user's function; the step receives an `Outcome`.

Timeouts of sync user code: it can't be cancelled from outside, so it runs on a helper thread
and the driver stops waiting at the deadline (the run ends TimedOut); the helper is sent
`RunInterrupted` (an asynchronous exception, delivered at its next Python instruction) so it
stops as soon as it is back from C code. Async code is cancelled by `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ._exceptions import RunInterrupted, RunTimeoutError

Steps = Generator[Any, Any, Any]
T = TypeVar("T")


def interrupt_thread(thread: threading.Thread) -> None:
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(RunInterrupted))


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Call `fn()` (in a copy of the current context) and return its value, or raise
    `RunTimeoutError` after `timeout` seconds."""
    outcome: list[Any] = []
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.append((True, context.run(fn)))
        except RunInterrupted:
            return
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"baton-timeout:{what}", daemon=True)
    thread.start()
    try:
        finished = done.wait(timeout)
    except BaseException:  # e.g. KeyboardInterrupt while waiting: stop the helper too
        interrupt_thread(thread)
        raise
    if not finished:
        interrupt_thread(thread)
        raise RunTimeoutError(f"{what} exceeded its timeout of {timeout:g} second(s)")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


class Call:
    __slots__ = ("args", "fn", "kwargs", "timeout", "what")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
        what: str,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.timeout = timeout
        self.what = what


class Outcome:
    """What a call of user code did: returned `value`, raised `exc`, or ran out of time."""

    __slots__ = ("exc", "timed_out", "value")

    def __init__(self, value: Any = None, exc: BaseException | None = None, timed_out: bool = False):
        self.value = value
        self.exc = exc
        self.timed_out = timed_out


def _call_sync(call: Call) -> Outcome:
    try:
        if call.timeout is None:
            return Outcome(call.fn(*call.args, **call.kwargs))
        return Outcome(call_with_timeout(lambda: call.fn(*call.args, **call.kwargs), call.timeout, call.what))
    except RunTimeoutError as exc:
        return Outcome(exc=exc, timed_out=call.timeout is not None)
    except BaseException as exc:  # the engine decides: Failed, or Crashed and re-raised
        return Outcome(exc=exc)


def drive_sync(steps: Steps) -> Any:
    reply: Any = None
    try:
        while True:
            request = steps.send(reply)
            if type(request) is Call:
                reply = _call_sync(request)
            elif isinstance(request, int | float):
                time.sleep(request)
                reply = None
            else:
                concurrent.futures.wait([request])
                reply = None
    except StopIteration as stop:
        return stop.value


async def _call_async(call: Call) -> Outcome:
    if call.timeout is None:
        try:
            return Outcome(await call.fn(*call.args, **call.kwargs))
        except BaseException as exc:
            return Outcome(exc=exc)
    scope = asyncio.timeout(call.timeout)
    try:
        async with scope:
            return Outcome(await call.fn(*call.args, **call.kwargs))
    except TimeoutError as exc:
        if scope.expired():
            return Outcome(
                exc=RunTimeoutError(f"{call.what} exceeded its timeout of {call.timeout:g} second(s)"),
                timed_out=True,
            )
        return Outcome(exc=exc)
    except BaseException as exc:
        return Outcome(exc=exc)


async def drive_async(steps: Steps) -> Any:
    reply: Any = None
    try:
        while True:
            request = steps.send(reply)
            if type(request) is Call:
                reply = await _call_async(request)
            elif isinstance(request, int | float):
                await asyncio.sleep(request)
                reply = None
            else:
                await asyncio.wait([asyncio.wrap_future(request)])
                reply = None
    except StopIteration as stop:
        return stop.value
