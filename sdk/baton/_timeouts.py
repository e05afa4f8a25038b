"""Timeouts for sync user code: run it on a helper thread, stop waiting at the deadline.

A sync function can't be cancelled from outside. At the deadline the engine stops waiting and
ends the run TimedOut; the helper thread is sent `RunInterrupted` (an asynchronous exception,
delivered at its next Python instruction) so it stops as soon as it returns from C code.
"""

from __future__ import annotations

import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._exceptions import RunInterrupted, RunTimeoutError

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
