"""What a flow and a task are: a function and its options, checked once, at decoration.

The engines run these, and the worker loads them from entrypoints. `baton.Flow` and
`baton.Task` (the classes `@flow` and `@task` make) extend them with the ways to use them:
calling, `submit()` and `map()`, `deploy()` and `serve()`. Keeping the options apart lets
the engine depend on what a flow is without depending on everything a flow can do.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Self, TypeVar

from ._hooks import Hook, hook_list
from ._retries import RetryDelay, resolve_delays
from ._task_runners import ThreadPoolTaskRunner
from ._validation import ParameterValidator

if TYPE_CHECKING:
    from baton_schemas.states import State

    from ._records import TaskRunRecord
    from ._results import ResultStore, Serializer

P = ParamSpec("P")
R = TypeVar("R")


def render_run_name(template: str | Callable[..., str], parameters: dict[str, Any], kind: str) -> str:
    """A run's name from its `flow_run_name` / `task_run_name`: a template formatted with the
    run's parameters (`"{name}-{date:%Y-%m-%d}"`), or a callable returning the name (given
    the parameters if it takes an argument named `parameters`)."""
    if callable(template):
        try:
            takes = "parameters" in inspect.signature(template).parameters
        except (TypeError, ValueError):
            takes = False
        name = template(parameters=dict(parameters)) if takes else template()
        if not isinstance(name, str) or not name:
            raise TypeError(f"{kind} callable must return a non-empty string, not {name!r}")
        return name
    try:
        return template.format(**parameters)
    except (KeyError, IndexError) as exc:
        raise ValueError(
            f"{kind} {template!r} names {exc}, which is not a parameter of the run: "
            f"use one of {', '.join(sorted(parameters)) or '(none)'}"
        ) from None


class _Options:
    """`with_options()` for both kinds: a copy made from the options it was given, changed."""

    _kind: str
    fn: Callable[..., Any]
    name: str
    _options: dict[str, Any]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def with_options(self, **options: Any) -> Self:
        """A copy with some options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"Unknown {self._kind} options: {sorted(unknown)}")
        return type(self)(self.fn, **{**self._options, **options})  # type: ignore[call-arg]


class FlowDefinition(_Options, Generic[P, R]):
    """A flow's function and options (see `baton.Flow`)."""

    _kind = "flow"

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0,
        timeout_seconds: float | None = None,
        log_prints: bool = False,
        validate_parameters: bool = True,
        task_runner: ThreadPoolTaskRunner | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStore | str | None = None,
        result_serializer: Serializer | str | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        on_running: Iterable[Hook] | None = None,
        on_completion: Iterable[Hook] | None = None,
        on_failure: Iterable[Hook] | None = None,
        on_crashed: Iterable[Hook] | None = None,
        on_cancellation: Iterable[Hook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow decorates a function")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if retry_delay_seconds < 0:
            raise ValueError("retry_delay_seconds must be >= 0")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "flow").replace("_", "-")
        self.version = version
        self.description = description or inspect.getdoc(fn)
        self.tags = list(tags or ())
        self.retries = retries
        self.retry_delay_seconds = float(retry_delay_seconds)
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.validate_parameters = validate_parameters
        self.task_runner = task_runner or ThreadPoolTaskRunner()
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.flow_run_name = flow_run_name
        self.on_running = hook_list(on_running, "on_running")
        self.on_completion = hook_list(on_completion, "on_completion")
        self.on_failure = hook_list(on_failure, "on_failure")
        self.on_crashed = hook_list(on_crashed, "on_crashed")
        self.on_cancellation = hook_list(on_cancellation, "on_cancellation")
        self.isasync = inspect.iscoroutinefunction(fn)
        self._validator = ParameterValidator(fn, self.name, validate_parameters)
        self._options = {
            "name": name,
            "version": version,
            "description": description,
            "tags": tags,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "timeout_seconds": timeout_seconds,
            "log_prints": log_prints,
            "validate_parameters": validate_parameters,
            "task_runner": task_runner,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "flow_run_name": flow_run_name,
            "on_running": self.on_running,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
            "on_crashed": self.on_crashed,
            "on_cancellation": self.on_cancellation,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn


class TaskDefinition(_Options, Generic[P, R]):
    """A task's function and options (see `baton.Task`)."""

    _kind = "task"

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
        # called with the task (a `baton.Task`), the run and its failed state
        retry_condition_fn: Callable[[Any, TaskRunRecord, State], bool] | None = None,
        timeout_seconds: float | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: timedelta | None = None,
        refresh_cache: bool = False,
        persist_result: bool | None = None,
        result_storage: ResultStore | str | None = None,
        result_serializer: Serializer | str | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        on_completion: Iterable[Hook] | None = None,
        on_failure: Iterable[Hook] | None = None,
        cache_policy: Any = None,
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
        self.name = name or str(getattr(fn, "__name__", "task"))
        self.description = description or inspect.getdoc(fn)
        self.tags = list(tags or ())
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = resolve_delays(retry_delay_seconds, retries)
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = timeout_seconds
        if cache_policy is not None and not hasattr(cache_policy, "compute_key"):
            raise TypeError(f"cache_policy takes a baton.cache_policies policy, not {cache_policy!r}")
        self.cache_key_fn = cache_key_fn
        # a cache_key_fn beside a policy wins over it; NO_CACHE is no policy
        self.cache_policy = cache_policy if cache_policy is not None and cache_policy.caches else None
        self.caches = cache_key_fn is not None or self.cache_policy is not None
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.on_completion = hook_list(on_completion, "on_completion")
        self.on_failure = hook_list(on_failure, "on_failure")
        self.has_hooks = bool(self.on_completion or self.on_failure)
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
            "cache_policy": cache_policy,
            "cache_expiration": cache_expiration,
            "refresh_cache": refresh_cache,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "log_prints": log_prints,
            "task_run_name": task_run_name,
            "on_completion": self.on_completion,
            "on_failure": self.on_failure,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        self.__wrapped__ = fn
