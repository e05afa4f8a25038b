"""`@task`: a function whose calls inside a flow are tracked, retried, cached and timed out."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from ._context import FlowRunContext, flow_run_ctx
from ._definitions import TaskDefinition
from ._exceptions import MissingContextError
from ._futures import BatonFuture, BatonFutureList, unmapped

if TYPE_CHECKING:
    from baton_schemas.states import State

    from ._hooks import Hook
    from ._records import TaskRunRecord
    from ._results import ResultStore, Serializer
    from ._retries import RetryDelay
    from ._task_engine import TaskRunEngine
    from .cache_policies import CachePolicy

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Task(TaskDefinition[P, R]):
    """A decorated function. Call it (inside a flow: a tracked task run), `.submit()` it
    (a future, runs concurrently) or `.map()` it over iterables (a list of futures).

    Options (`@task(...)`, `with_options(...)`): name, description, tags, version, retries,
    retry_delay_seconds, retry_jitter_factor, retry_condition_fn, timeout_seconds,
    cache_key_fn, cache_expiration, refresh_cache, persist_result, result_storage,
    result_serializer, log_prints."""

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
        # The engine (and pydantic with it) loads on the first call, not when a module decorates.
        from ._task_engine import new_task_run

        return new_task_run(self, bound, wait_for, flow_ctx, upstream)


def _require_flow(method: str) -> FlowRunContext:
    flow_ctx = flow_run_ctx.get()
    if flow_ctx is None:
        raise MissingContextError(f"Task.{method}() runs inside a flow; outside one, call the task directly.")
    return flow_ctx


def _mappable(value: Any) -> bool:
    if isinstance(value, str | bytes | dict):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


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
    task_run_name: str | Callable[..., str] | None = ...,
    on_completion: Iterable[Hook] | None = ...,
    on_failure: Iterable[Hook] | None = ...,
    cache_policy: CachePolicy | None = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a task: `@task` or `@task(retries=2, ...)`. See `Task` for options."""
    if fn is not None:
        return Task(fn, **options)
    return lambda fn: Task(fn, **options)
