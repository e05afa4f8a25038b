"""`@task`: a function whose calls inside a flow are tracked, retried, cached and timed out."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload
from uuid import uuid4

from ._context import FlowRunContext, TaskRunRecord, flow_run_ctx
from ._exceptions import MissingContextError
from ._futures import BatonFuture, BatonFutureList, unmapped
from ._retries import RetryDelay, resolve_delays

if TYPE_CHECKING:
    from baton_schemas.runs import TaskInput
    from baton_schemas.states import State

    from ._results import ResultStore, Serializer
    from ._task_engine import TaskRunEngine

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CONTAINERS = (list, tuple, set, frozenset)


class Task(Generic[P, R]):
    """A decorated function. Call it (inside a flow: a tracked task run), `.submit()` it
    (a future, runs concurrently) or `.map()` it over iterables (a list of futures)."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[[Task[..., Any], TaskRunRecord, State], bool] | None = None,
        timeout_seconds: float | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: timedelta | None = None,
        refresh_cache: bool = False,
        persist_result: bool | None = None,
        result_storage: ResultStore | str | None = None,
        result_serializer: Serializer | str | None = None,
        log_prints: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task decorates a function")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if retry_jitter_factor is not None and retry_jitter_factor < 0:
            raise ValueError("retry_jitter_factor must be >= 0")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "task")
        self.description = description or inspect.getdoc(fn)
        self.tags = list(tags or ())
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = resolve_delays(retry_delay_seconds, retries)
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.isasync = inspect.iscoroutinefunction(fn)
        self.task_key = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', self.name)}"
        self.signature = inspect.signature(fn)
        self._options = {
            "name": name,
            "description": description,
            "tags": tags,
            "version": version,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "retry_jitter_factor": retry_jitter_factor,
            "retry_condition_fn": retry_condition_fn,
            "timeout_seconds": timeout_seconds,
            "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration,
            "refresh_cache": refresh_cache,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "log_prints": log_prints,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"Unknown task options: {sorted(unknown)}")
        return Task(self.fn, **{**self._options, **options})

    # --- calling ----------------------------------------------------------------------------

    # Keyword options ride between P.args and P.kwargs, which PEP 612 does not allow to
    # declare; type checkers still apply these overloads, hence the ignores.
    @overload
    def __call__(  # type: ignore[valid-type]
        self: Task[P, Coroutine[Any, Any, T]],
        *args: P.args,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> Coroutine[Any, Any, State]: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self,
        *args: P.args,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> State: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self,
        *args: P.args,
        return_state: Literal[False] = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> R: ...

    def __call__(
        self,
        *args: Any,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        engine = self._engine(self.signature.bind(*args, **kwargs), wait_for, flow_run_ctx.get())
        if self.isasync:
            return self._call_async(engine, return_state)
        state = engine.run_sync()
        return state if return_state else state.result()

    async def _call_async(self, engine: TaskRunEngine, return_state: bool) -> Any:
        state = await engine.run_async()
        return state if return_state else state.result()

    @overload
    def submit(  # type: ignore[valid-type]
        self: Task[P, Coroutine[Any, Any, T]],
        *args: P.args,
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> BatonFuture[T]: ...

    @overload
    def submit(  # type: ignore[valid-type]
        self: Task[P, T],
        *args: P.args,
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> BatonFuture[T]: ...

    def submit(self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """Start a task run concurrently; returns its future."""
        flow_ctx = _require_flow("submit")
        return self._submit(self.signature.bind(*args, **kwargs), wait_for, flow_ctx)

    @overload
    def map(
        self: Task[..., Coroutine[Any, Any, T]],
        *args: Any,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> BatonFutureList[T]: ...

    @overload
    def map(
        self: Task[..., T], *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any
    ) -> BatonFutureList[T]: ...

    def map(self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """Submit one task run per item of the iterable arguments (zipped; wrap a value in
        `unmapped(...)` to pass it whole to every run). Futures are waited for and mapped over
        their results."""
        flow_ctx = _require_flow("map")
        bound = self.signature.bind(*args, **kwargs)
        mapped: dict[str, list[Any]] = {}
        static: dict[str, Any] = {}
        upstream: dict[str, list[Any]] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, unmapped):
                static[name] = value.value
                continue
            if isinstance(value, BatonFuture):
                upstream[name] = [value]
                value = value.result()
            if _mappable(value):
                mapped[name] = list(value)
            else:
                static[name] = value
        if not mapped:
            raise ValueError(f"{self.name}.map() needs at least one iterable argument")
        lengths = {name: len(items) for name, items in mapped.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{self.name}.map() got iterables of different lengths: {lengths}")
        wait_list = list(wait_for) if wait_for is not None else None
        futures: BatonFutureList[R] = BatonFutureList()
        for index in range(next(iter(lengths.values()))):
            arguments = dict(static)
            for name, items in mapped.items():
                arguments[name] = items[index]
            call = inspect.BoundArguments(self.signature, arguments)  # type: ignore[arg-type]
            futures.append(self._submit(call, wait_list, flow_ctx, upstream))
        return futures

    # --- internals --------------------------------------------------------------------------

    def _submit(
        self,
        bound: inspect.BoundArguments,
        wait_for: Iterable[Any] | None,
        flow_ctx: FlowRunContext,
        upstream: dict[str, list[Any]] | None = None,
    ) -> BatonFuture[R]:
        engine = self._engine(bound, wait_for, flow_ctx, upstream)
        runner = flow_ctx.task_runner
        if self.isasync:
            inner = runner.submit_coroutine(engine.run_async())
        else:
            inner = runner.submit(engine.run_sync)
        future: BatonFuture[R] = BatonFuture(engine.run, inner)
        flow_ctx.futures.append(future)
        return future

    def _engine(
        self,
        bound: inspect.BoundArguments,
        wait_for: Iterable[Any] | None,
        flow_ctx: FlowRunContext | None,
        upstream: dict[str, list[Any]] | None = None,
    ) -> TaskRunEngine:
        from ._fast_states import pending
        from ._results import resolve_serializer
        from ._task_engine import TaskRunEngine

        wait_list = list(wait_for) if wait_for is not None else None
        if flow_ctx is not None:
            store, serializer, reporter = flow_ctx.result_store, flow_ctx.serializer, flow_ctx.reporter
            persist_default = flow_ctx.persist_results
            dynamic_key = flow_ctx.next_dynamic_key(self.task_key)
            inputs = collect_inputs(bound.arguments, flow_ctx, wait_list, upstream)
        else:
            from ._runtime import get_runtime

            runtime = get_runtime()
            store, reporter = runtime.result_store, None
            serializer = resolve_serializer(None, runtime.settings.result_serializer)
            persist_default = runtime.settings.persist_results
            dynamic_key, inputs = "0", {}
        if self.result_storage is not None:
            store = _store(self.result_storage)
        if self.result_serializer is not None:
            serializer = resolve_serializer(self.result_serializer)
        persist = self.persist_result
        if persist is None:
            persist = self.cache_key_fn is not None or persist_default
        run = TaskRunRecord(
            id=uuid4(),
            flow_run_id=flow_ctx.flow_run.id if flow_ctx is not None else None,
            name=f"{self.name}-{dynamic_key}",
            task_key=self.task_key,
            dynamic_key=dynamic_key,
            tags=self.tags,
            task_inputs=inputs,
        )
        engine = TaskRunEngine(
            self, run, bound.arguments, bound, wait_list, flow_ctx, reporter, store, serializer, persist
        )
        engine.set_state(pending())
        return engine


def _require_flow(method: str) -> FlowRunContext:
    flow_ctx = flow_run_ctx.get()
    if flow_ctx is None:
        raise MissingContextError(f"Task.{method}() runs inside a flow; outside one, call the task directly.")
    return flow_ctx


def _store(value: ResultStore | str) -> ResultStore:
    from ._results import LocalResultStore

    return LocalResultStore(value) if isinstance(value, str) else value


def _mappable(value: Any) -> bool:
    if isinstance(value, str | bytes | dict):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def collect_inputs(
    arguments: dict[str, Any],
    flow_ctx: FlowRunContext,
    wait_for: list[Any] | None,
    upstream: dict[str, list[Any]] | None = None,
) -> dict[str, list[TaskInput]]:
    """The run's upstream edges: futures and task results among its arguments, and `wait_for`."""
    found: dict[str, list[Any]] = {}
    for name, value in arguments.items():
        ids: list[Any] = []
        _visit(value, flow_ctx, ids, 3)
        if upstream and name in upstream:
            ids.extend(future.task_run.id for future in upstream[name])
        if ids:
            found[name] = ids
    if wait_for:
        ids = []
        for value in wait_for:
            _visit(value, flow_ctx, ids, 1)
        if ids:
            found["wait_for"] = ids
    if not found:
        return {}
    from baton_schemas.runs import TaskInput, TaskInputType

    return {
        name: [TaskInput(input_type=TaskInputType.TASK_RUN, id=run_id) for run_id in dict.fromkeys(ids)]
        for name, ids in found.items()
    }


def _visit(value: Any, flow_ctx: FlowRunContext, ids: list[Any], depth: int) -> None:
    if isinstance(value, BatonFuture):
        ids.append(value.task_run.id)
        return
    upstream = flow_ctx.upstream_of(value)
    if upstream is not None:
        ids.append(upstream)
        return
    if depth:
        if isinstance(value, _CONTAINERS):
            for item in value:
                _visit(item, flow_ctx, ids, depth - 1)
        elif isinstance(value, dict):
            for item in value.values():
                _visit(item, flow_ctx, ids, depth - 1)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = ...,
    description: str | None = ...,
    tags: Iterable[str] | None = ...,
    version: str | None = ...,
    retries: int = ...,
    retry_delay_seconds: RetryDelay | None = ...,
    retry_jitter_factor: float | None = ...,
    retry_condition_fn: Callable[[Task[..., Any], TaskRunRecord, State], bool] | None = ...,
    timeout_seconds: float | None = ...,
    cache_key_fn: Callable[..., str | None] | None = ...,
    cache_expiration: timedelta | None = ...,
    refresh_cache: bool = ...,
    persist_result: bool | None = ...,
    result_storage: ResultStore | str | None = ...,
    result_serializer: Serializer | str | None = ...,
    log_prints: bool | None = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a task: `@task` or `@task(retries=2, ...)`. See `Task` for options."""
    if fn is not None:
        return Task(fn, **options)
    return lambda fn: Task(fn, **options)
