"""What the engine knows about the runs in progress: in-process records and context variables."""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ._exceptions import MissingContextError

if TYPE_CHECKING:
    from baton_schemas.runs import RetryPolicy, TaskInput, TaskRunInfo
    from baton_schemas.states import State

    from ._flows import Flow
    from ._futures import BatonFuture
    from ._reporting import Reporter
    from ._results import ResultStore, Serializer
    from ._task_runners import ThreadPoolTaskRunner
    from ._tasks import Task

# Values cheap to recreate and ambiguous by identity (small ints are shared) are never linked
# to the task run that returned them.
_UNTRACKED_TYPES = (type(None), bool, int, float)


@dataclass(slots=True, eq=False)
class TaskRunRecord:
    """A task run as the engine tracks it; `to_info()` is what the tracker upserts."""

    id: UUID
    flow_run_id: UUID | None
    name: str
    task_key: str
    dynamic_key: str
    tags: list[str]
    task_inputs: dict[str, list[TaskInput]]
    cache_key: str | None = None
    state: State | None = None
    version: int = 0
    run_count: int = 0

    def to_info(self) -> TaskRunInfo:
        from baton_schemas.runs import TaskRunInfo

        assert self.flow_run_id is not None, "only task runs of a flow run are reported"
        return TaskRunInfo(
            id=self.id,
            flow_run_id=self.flow_run_id,
            name=self.name,
            task_key=self.task_key,
            dynamic_key=self.dynamic_key,
            tags=self.tags,
            task_inputs=self.task_inputs,
            cache_key=self.cache_key,
        )


@dataclass(slots=True, eq=False)
class FlowRunRecord:
    id: UUID
    name: str
    flow_name: str
    parameters: dict[str, Any]
    tags: list[str]
    retry_policy: RetryPolicy
    parent_flow_run_id: UUID | None = None
    parent_task_run_id: UUID | None = None
    state: State | None = None
    run_count: int = 0
    # known once the server has the run (emit_event relates events to them)
    flow_id: UUID | None = None
    deployment_id: UUID | None = None


@dataclass(slots=True, eq=False)
class FlowRunContext:
    """Everything a task needs from the flow run it belongs to."""

    flow: Flow[..., Any]
    flow_run: FlowRunRecord
    reporter: Reporter
    task_runner: ThreadPoolTaskRunner
    result_store: ResultStore
    serializer: Serializer
    log_prints: bool
    persist_results: bool = False
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
    task: Task[..., Any]
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
