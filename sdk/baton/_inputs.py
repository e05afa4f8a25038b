"""A run's arguments with futures and states replaced by their values, wherever they sit.

Inside lists, tuples, sets, dicts, dataclasses and pydantic models, at any depth: a future is
waited for and replaced by its result, a state by its result. An upstream that did not
complete stops the run before it starts (`UpstreamTaskError`: the task stays Pending, named
NotReady), unless the value is wrapped in `allow_failure(...)`: then it gets the failed run's
exception (or the data its state holds). `quote(...)` passes its value as it is, unvisited.

Plain arguments stay cheap: a scalar is recognised by its type and never visited, and a
container is rebuilt only when something inside it changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from baton_schemas.states import State, StateType

from ._exceptions import UpstreamTaskError
from ._futures import BatonFuture

T = TypeVar("T")
SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})
_FLAT = (list, tuple, set, frozenset)
MAX_DEPTH = 32  # deeper structures are passed on as they are


class allow_failure(Generic[T]):
    """Run even if this upstream failed: its value is the failed run's exception."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value


class quote(Generic[T]):
    """Pass this value as it is: futures and states inside it are not resolved (nor waited)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unquote(self) -> T:
        return self.value


def needs_resolving(value: Any, depth: int = MAX_DEPTH) -> bool:
    """Whether `value` holds a future, a state or an annotation anywhere."""
    kind = type(value)
    if kind in SCALARS:
        return False
    if isinstance(value, BatonFuture | State | allow_failure | quote):
        return True
    if depth <= 0:
        return False
    if isinstance(value, _FLAT):
        return any(needs_resolving(item, depth - 1) for item in value)
    if isinstance(value, dict):
        return any(needs_resolving(item, depth - 1) for item in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(needs_resolving(getattr(value, f.name), depth - 1) for f in dataclasses.fields(value))
    if isinstance(value, BaseModel):
        return any(needs_resolving(getattr(value, name), depth - 1) for name in type(value).model_fields)
    return False


def _value_of(state: State, label: str, allowed: bool) -> Any:
    if state.type is StateType.COMPLETED:
        return state.result()
    not_ready = state.type is StateType.PENDING and state.name == "NotReady"
    if allowed and (state.type in (StateType.FAILED, StateType.CRASHED) or not_ready):
        return state.result(raise_on_failure=False) if not not_ready else None
    raise UpstreamTaskError(f"Upstream task run {label} did not reach a 'COMPLETED' state ({state.name})")


def resolve(value: Any, allowed: bool = False, depth: int = MAX_DEPTH) -> Generator[Any, Any, Any]:
    """The value with its futures and states resolved (see the module's docstring). Yields the
    inner futures it waits for, for an engine's driver."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if isinstance(value, quote):
        return value.value
    if isinstance(value, allow_failure):
        return (yield from resolve(value.value, True, depth))
    if isinstance(value, BatonFuture):
        if not value.done():
            yield value._future
        return _value_of(value.final_state(), repr(value.task_run.name), allowed)
    if isinstance(value, State):
        return _value_of(value, "of a state passed in", allowed)
    if depth <= 0 or not needs_resolving(value, depth):
        return value
    if isinstance(value, _FLAT):
        items = []
        for item in value:
            items.append((yield from resolve(item, allowed, depth - 1)))
        if isinstance(value, list):
            return items
        if isinstance(value, tuple) and type(value) is not tuple:  # a named tuple
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, dict):
        resolved = {}
        for key, item in value.items():
            resolved[key] = yield from resolve(item, allowed, depth - 1)
        return resolved
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = yield from resolve(old, allowed, depth - 1)
            if new is not old:
                changes[field.name] = new
        clone = copy.copy(value)
        for name, new in changes.items():
            object.__setattr__(clone, name, new)  # frozen dataclasses too
        return clone
    if isinstance(value, BaseModel):
        update = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = yield from resolve(old, allowed, depth - 1)
            if new is not old:
                update[name] = new
        return value.model_copy(update=update)
    return value


def resolve_now(value: Any) -> Any:
    """`resolve()` for a caller that may block (a subflow's arguments, in sync code)."""
    steps = resolve(value)
    try:
        waited = next(steps)
        while True:
            concurrent.futures.wait([waited])
            waited = steps.send(None)
    except StopIteration as done:
        return done.value


async def resolve_async(value: Any) -> Any:
    """`resolve()` awaiting what it waits for (a subflow's arguments, in async code)."""
    steps = resolve(value)
    try:
        waited = next(steps)
        while True:
            await asyncio.wait([asyncio.wrap_future(waited)])
            waited = steps.send(None)
    except StopIteration as done:
        return done.value
