"""State hooks: functions called when a run enters a state, with the reference system's
signatures: `hook(flow, flow_run, state)` for flows, `hook(task, task_run, state)` for tasks.

Flows have `on_running`, `on_completion`, `on_failure`, `on_crashed` and `on_cancellation`;
tasks `on_completion` and `on_failure`. A hook may be async. A hook that raises is logged and
changes nothing: the run keeps its state.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # decorating a function loads no pydantic
    from baton_schemas.states import State

Hook = Callable[[Any, Any, "State"], Any]

FLOW_HOOKS = ("on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation")
TASK_HOOKS = ("on_completion", "on_failure")
_BY_TYPE = {  # StateType values
    "RUNNING": "on_running",
    "COMPLETED": "on_completion",
    "FAILED": "on_failure",
    "CRASHED": "on_crashed",
    "CANCELLED": "on_cancellation",
}


def hook_list(hooks: Iterable[Hook] | Hook | None, kind: str) -> list[Hook]:
    """The hooks an option was given (one callable or several), checked at decoration."""
    if hooks is None:
        return []
    found = [hooks] if callable(hooks) else list(hooks)
    for hook in found:
        if not callable(hook):
            raise TypeError(f"{kind} takes functions (hook(owner, run, state)), not {hook!r}")
    return found


def hooks_for(owner: Any, state: State) -> list[Hook]:
    """The hooks of `owner` (a flow or task definition) for entering `state`."""
    kind = _BY_TYPE.get(state.type.value)
    return (getattr(owner, kind, None) or []) if kind is not None else []


def _run_coroutine(coro: Any) -> None:
    """Await an async hook's coroutine to its end, from sync code inside or outside a loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="baton-hook")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def run_hooks(owner: Any, run: Any, state: State, logger: logging.Logger, extra: dict[str, Any]) -> None:
    """Call each hook of `owner` for `state`; log, and otherwise ignore, those that raise."""
    for hook in hooks_for(owner, state):
        name = getattr(hook, "__name__", repr(hook))
        logger.info("Running hook %r in response to entering state %r", name, state.name, extra=extra)
        try:
            result = hook(owner, run, state)
            if inspect.iscoroutine(result):
                _run_coroutine(result)
        except Exception:
            logger.exception("An error was encountered while running hook %r", name, extra=extra)
        else:
            logger.info("Hook %r finished running successfully", name, extra=extra)
