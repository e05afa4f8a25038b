"""The runs in progress in this thread or task: their contexts, held in context variables.

A task finds the flow run it belongs to here (`flow_run_ctx`), and user code the run it is in
(`get_run_context()`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ._exceptions import MissingContextError

if TYPE_CHECKING:
    from ._definitions import FlowDefinition, TaskDefinition
    from ._futures import BatonFuture
    from ._protocols import Reporter
    from ._records import FlowRunRecord, TaskRunRecord
    from ._results import ResultStore, Serializer
    from ._task_runners import ThreadPoolTaskRunner

# Values cheap to recreate and ambiguous by identity (small ints are shared) are never linked
# to the task run that returned them.
_UNTRACKED_TYPES = (type(None), bool, int, float)


@dataclass(slots=True, eq=False)
class FlowRunContext:
    """Everything a task needs from the flow run it belongs to."""

    flow: FlowDefinition[..., Any]
    flow_run: FlowRunRecord
    reporter: Reporter
    task_runner: ThreadPoolTaskRunner
    result_store: ResultStore
    serializer: Serializer
    log_prints: bool
    persist_results: bool = False
    claim_id: UUID | None = None  # a worker's claim of the run, which its proposals carry
    futures: list[BatonFuture[Any]] = field(default_factory=list)
    # id(value) -> (value, task run id): links values returned by tasks to their task run, so
    # passing one into another task records the edge. The value is kept alive on purpose.
    task_run_results: dict[int, tuple[Any, UUID]] = field(default_factory=dict)
    _counters: dict[str, itertools.count[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_dynamic_key(self, task_key: str) -> str:
        counter = self._counters.get(task_key)
        if counter is None:
            with self._lock:
                counter = self._counters.setdefault(task_key, itertools.count())
        return str(next(counter))

    def link_result(self, value: Any, task_run_id: UUID) -> None:
        if not isinstance(value, _UNTRACKED_TYPES):
            self.task_run_results[id(value)] = (value, task_run_id)

    def upstream_of(self, value: Any) -> UUID | None:
        if isinstance(value, _UNTRACKED_TYPES):
            return None
        found = self.task_run_results.get(id(value))
        return found[1] if found is not None and found[0] is value else None


@dataclass(slots=True, eq=False)
class TaskRunContext:
    task: TaskDefinition[..., Any]
    task_run: TaskRunRecord
    parameters: dict[str, Any]
    flow_run_context: FlowRunContext | None
    log_prints: bool

    @property
    def flow_run_id(self) -> UUID | None:
        return self.task_run.flow_run_id


flow_run_ctx: ContextVar[FlowRunContext | None] = ContextVar("baton_flow_run", default=None)
task_run_ctx: ContextVar[TaskRunContext | None] = ContextVar("baton_task_run", default=None)


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run in progress: the task run if inside one, else the flow run."""
    ctx: TaskRunContext | FlowRunContext | None = task_run_ctx.get() or flow_run_ctx.get()
    if ctx is None:
        raise MissingContextError("No flow or task run is in progress here.")
    return ctx


_tags: ContextVar[frozenset[str]] = ContextVar("baton_tags", default=frozenset())


def current_tags() -> frozenset[str]:
    """The tags of the `tags(...)` blocks (and the flow run) this code runs inside."""
    return _tags.get()


def with_current_tags(own: Iterable[str]) -> list[str]:
    """A new run's tags: its own first, then those of the blocks around it, each once."""
    own = list(own)
    around = _tags.get()
    if not around:
        return own
    return list(dict.fromkeys([*own, *sorted(around)]))


@contextmanager
def tags(*new_tags: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow run and task run created inside the block; blocks nest.

        with tags("nightly", "team-a"):
            my_flow()      # its runs, and the task runs inside it, carry both tags

    Yields the tags in force inside the block."""
    current = _tags.get() | frozenset(new_tags)
    token = _tags.set(current)
    try:
        yield current
    finally:
        _tags.reset(token)


@contextmanager
def flow_run_tags(run_tags: Iterable[str]) -> Iterator[None]:
    """Inside a flow run, its tags hold for what it creates (its task runs and subflows)."""
    token = _tags.set(_tags.get() | frozenset(run_tags))
    try:
        yield
    finally:
        _tags.reset(token)
