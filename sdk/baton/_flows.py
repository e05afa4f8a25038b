"""`@flow`: a function whose every call is a tracked flow run (a subflow inside another flow)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from ._definitions import FlowDefinition

if TYPE_CHECKING:
    from baton_schemas.deployments import Deployment
    from baton_schemas.states import State

    from ._hooks import Hook
    from ._results import ResultStore, Serializer
    from ._task_runners import ThreadPoolTaskRunner

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Flow(FlowDefinition[P, R]):
    """A decorated function. Calling it runs a flow run and returns its value (or its final
    State with `return_state=True`); an async flow returns a coroutine to await.

    Options (`@flow(...)`, `with_options(...)`): name, version, description, tags, retries,
    retry_delay_seconds, timeout_seconds, log_prints, validate_parameters, task_runner,
    persist_result, result_storage, result_serializer, flow_run_name (a template formatted
    with the run's parameters, `"{name}-{date:%Y-%m-%d}"`, or a callable)."""

    def deploy(self, name: str, work_pool_name: str, **options: Any) -> Deployment:
        """Create or update the deployment `name` of this flow on the server (what one entry of
        baton.yaml does) and return it. Options: work_queue_name, parameters, job_variables,
        description, version, tags, cron, interval, rrule, timezone (of those three),
        schedules, schedule_policy, triggers, pull_steps, concurrency_limit, retry_policy,
        timeout_seconds, log_prints, enforce_parameter_schema, paused, entrypoint, project_dir.
        The entrypoint is this flow's file, relative to the working directory. Unset, the retry
        policy, timeout, log_prints, version and description are this flow's own."""
        from ._deploy.deployer import deploy_flow

        return deploy_flow(self, name, work_pool_name, **options)

    def serve(self, name: str, **options: Any) -> None:
        """Register the deployment `name` of this flow and run a worker for it in this process,
        until SIGTERM / Ctrl-C. Options: those of `deploy()`, plus `work_pool_name` (default
        `serve-<flow>`, created if missing) and the worker's `limit`, `prestart`,
        `drain_seconds`, `heartbeat_seconds`, `lease_seconds`, `cancel_grace_seconds`."""
        from ._worker._serve import serve

        serve(self, name, **options)

    # `return_state` rides between P.args and P.kwargs, which PEP 612 does not allow to
    # declare; type checkers still apply these overloads, hence the ignores.
    @overload
    def __call__(  # type: ignore[valid-type]
        self: Flow[P, Coroutine[Any, Any, T]],
        *args: P.args,
        return_state: Literal[True],
        **kwargs: P.kwargs,
    ) -> Coroutine[Any, Any, State]: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self,
        *args: P.args,
        return_state: Literal[True],
        **kwargs: P.kwargs,
    ) -> State: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self,
        *args: P.args,
        return_state: Literal[False] = False,
        **kwargs: P.kwargs,
    ) -> R: ...

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        from ._flow_engine import FlowRunEngine, call_result
        from ._inputs import needs_resolving, resolve_now
        from ._runtime import get_runtime

        # Futures and states among the arguments (a subflow's) become their values first, so
        # the parameters are validated as values.
        if self.isasync:
            return self._call_async(args, kwargs, return_state)
        if needs_resolving((args, kwargs)):
            args, kwargs = resolve_now((args, kwargs))
        bound = self._validator.bind(args, kwargs)  # raises before any run exists
        engine = FlowRunEngine(self, bound, get_runtime())
        state = engine.run_sync()
        return state if return_state else call_result(engine, state)

    async def _call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool) -> Any:
        from ._flow_engine import FlowRunEngine, call_result
        from ._inputs import needs_resolving, resolve_async
        from ._runtime import get_runtime

        if needs_resolving((args, kwargs)):
            args, kwargs = await resolve_async((args, kwargs))
        bound = self._validator.bind(args, kwargs)
        engine = FlowRunEngine(self, bound, get_runtime())
        state = await engine.run_async()
        return state if return_state else call_result(engine, state)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = ...,
    version: str | None = ...,
    description: str | None = ...,
    tags: Iterable[str] | None = ...,
    retries: int = ...,
    retry_delay_seconds: float = ...,
    timeout_seconds: float | None = ...,
    log_prints: bool = ...,
    validate_parameters: bool = ...,
    task_runner: ThreadPoolTaskRunner | None = ...,
    persist_result: bool | None = ...,
    result_storage: ResultStore | str | None = ...,
    result_serializer: Serializer | str | None = ...,
    flow_run_name: str | Callable[..., str] | None = ...,
    on_running: Iterable[Hook] | None = ...,
    on_completion: Iterable[Hook] | None = ...,
    on_failure: Iterable[Hook] | None = ...,
    on_crashed: Iterable[Hook] | None = ...,
    on_cancellation: Iterable[Hook] | None = ...,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a flow: `@flow` or `@flow(retries=3, ...)`. See `Flow` for options."""
    if fn is not None:
        return Flow(fn, **options)
    return lambda fn: Flow(fn, **options)
