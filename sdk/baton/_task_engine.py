"""The life of one task run: Pending -> (cache hit: Cached) | Running -> [AwaitingRetry ->
Retrying ->] Completed / Failed / TimedOut / Crashed, written once for sync and async tasks.
A task run interrupted because the run it belongs to timed out (or its coroutine was cancelled)
ends Cancelled."""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from baton_schemas.runs import TaskInput, TaskInputType
from baton_schemas.states import (
    AwaitingConcurrencySlot,
    AwaitingRetry,
    Cached,
    Cancelled,
    Crashed,
    Failed,
    Pending,
    Retrying,
    State,
    StateType,
    TimedOut,
)

from . import _tracing
from ._cache import CacheIndex, policy_key
from ._context import FlowRunContext, TaskRunContext, task_run_ctx, with_current_tags
from ._definitions import render_run_name
from ._drivers import Call, Outcome, drive_async, drive_sync
from ._exceptions import (
    CancelledRun,
    ConcurrencySlotAcquisitionError,
    RunInterrupted,
    UpstreamTaskError,
)
from ._fast_states import completed, pending, running
from ._final_state import mark, state_from_return
from ._futures import BatonFuture
from ._hooks import run_hooks
from ._inputs import SCALARS, allow_failure, needs_resolving, quote, resolve
from ._logging import format_state, run_extra, task_run_logger
from ._records import TaskRunRecord
from ._results import ResultStore, Serializer, as_store, load, persist, resolve_serializer
from ._retries import delay_for_retry
from ._runtime import get_runtime

if TYPE_CHECKING:
    from ._concurrency._slots import Lease
    from ._concurrency._tags import TagSlots
    from ._definitions import TaskDefinition
    from ._protocols import Reporter

_CONTAINERS = (list, tuple, set, frozenset)
_BATON_DIR = __file__.rsplit("/", 1)[0]


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` without the engine's own leading frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_BATON_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


class TaskRunEngine:
    def __init__(
        self,
        task: TaskDefinition[..., Any],
        run: TaskRunRecord,
        arguments: dict[str, Any],
        call_args: Any,
        wait_for: list[Any] | None,
        flow_ctx: FlowRunContext | None,
        reporter: Reporter | None,
        store: ResultStore,
        serializer: Serializer,
        persist_result: bool,
    ) -> None:
        self.task = task
        self.run = run
        self.bound = call_args  # inspect.BoundArguments sharing `arguments`
        self.wait_for = wait_for
        self.flow_ctx = flow_ctx
        self.reporter = reporter
        self.store = store
        self.serializer = serializer
        self.persist_result = persist_result
        log_prints = task.log_prints
        if log_prints is None:
            log_prints = flow_ctx.log_prints if flow_ctx is not None else False
        self.ctx = TaskRunContext(task, run, arguments, flow_ctx, log_prints)
        self._extra: dict[str, Any] | None = None

    # --- drivers ----------------------------------------------------------------------------

    def run_sync(self) -> State:
        if _tracing.enabled():  # a span in the flow run's trace; nothing at all when off
            with _tracing.span(f"task {self.run.name}", attributes=self._span_attributes()):
                return self._run_sync()
        return self._run_sync()

    async def run_async(self) -> State:
        if _tracing.enabled():
            with _tracing.span(f"task {self.run.name}", attributes=self._span_attributes()):
                return await self._run_async()
        return await self._run_async()

    def _span_attributes(self) -> dict[str, Any]:
        return {"baton.task_run.id": self.run.id, "baton.flow_run.id": self.run.flow_run_id}

    def _run_sync(self) -> State:
        token = task_run_ctx.set(self.ctx)
        try:
            return drive_sync(self.steps())  # type: ignore[no-any-return]
        finally:
            task_run_ctx.reset(token)

    async def _run_async(self) -> State:
        token = task_run_ctx.set(self.ctx)
        try:
            return await drive_async(self.steps())  # type: ignore[no-any-return]
        finally:
            task_run_ctx.reset(token)

    # --- states -----------------------------------------------------------------------------

    def extra(self) -> dict[str, Any]:
        if self._extra is None:
            self._extra = run_extra(self.ctx)
        return self._extra

    def set_state(self, state: State) -> None:
        run = self.run
        run.version += 1
        run.state = mark(state, run.id)
        if self.reporter is not None:
            self.reporter.report_task_run_state(run, state, run.version)
        if state.is_terminal:
            level, text = logging.INFO, f"Finished in state {format_state(state)}"
        elif state.name == "NotReady":
            level, text = logging.WARNING, f"Not run: {state.message}"
        elif state.type is StateType.SCHEDULED or state.name == "Retrying":
            level, text = logging.INFO, f"Entered state {format_state(state)}"
        else:
            level, text = logging.DEBUG, f"Entered state {format_state(state)}"
        if task_run_logger.isEnabledFor(level):
            task_run_logger.log(level, text, extra=self.extra())
        if self.task.has_hooks and state.is_terminal:
            run_hooks(self.task, run, state, task_run_logger, self.extra())

    def _flow_run_cancelling(self) -> bool:
        flow_ctx, reporter = self.flow_ctx, self.reporter
        return (
            flow_ctx is not None and reporter is not None and reporter.cancel_requested(flow_ctx.flow_run.id)
        )

    # --- the run ----------------------------------------------------------------------------

    def steps(self) -> Generator[Any, Any, State]:
        task, run = self.task, self.run
        try:
            yield from self._wait_for_upstream()
        except UpstreamTaskError as exc:  # it never runs: Pending, NotReady, as the reference system
            state = Pending(message=str(exc), name="NotReady").with_result(exception=exc)
            self.set_state(state)
            return state

        if task.caches:
            hit = self._cache_lookup()
            if hit is not None:
                self.set_state(hit)
                return hit

        tag_slots = self._tag_slots()
        while True:
            if self._flow_run_cancelling():
                state = Cancelled(message="not started: its flow run is being cancelled")
                state.with_result(exception=CancelledRun(state.message or ""))
                self.set_state(state)
                return state
            lease: Lease | None = None
            if tag_slots is not None:
                taken = yield from self._take_tag_slots(tag_slots)
                if isinstance(taken, State):  # it can never run, or was cancelled while it waited
                    self.set_state(taken)
                    return taken
                lease = taken
            run.run_count += 1
            self.set_state(running() if run.run_count == 1 else Retrying())
            try:
                outcome: Outcome = yield Call(
                    task.fn,
                    self.bound.args,
                    self.bound.kwargs,
                    task.timeout_seconds,
                    f"Task run {run.name!r}",
                )
            except BaseException:
                if lease is not None and tag_slots is not None:
                    tag_slots.release(lease)  # not waited for: the run is being torn down
                raise
            if lease is not None and tag_slots is not None:
                yield tag_slots.release(lease)
            state = self._state_from(outcome)
            raised = outcome.exc
            if raised is not None and not isinstance(raised, Exception):  # crashed, or interrupted
                self.set_state(state)
                raise raised
            if state.type is StateType.FAILED and self._should_retry(state):
                delay = delay_for_retry(task.retry_delays, run.run_count, task.retry_jitter_factor)
                task_run_logger.info(
                    "Task run failed: %s - Retry %d/%d will start %g second(s) from now",
                    format_state(state),
                    run.run_count,
                    task.retries,
                    delay,
                    extra=self.extra(),
                )
                self.set_state(AwaitingRetry(delay_seconds=delay))
                if delay > 0:
                    yield delay
                continue
            if state.type is StateType.FAILED and outcome.exc is not None and not outcome.timed_out:
                task_run_logger.error(
                    "Task run failed with exception %r%s\n%s",
                    outcome.exc,
                    " - Retries are exhausted" if task.retries else "",
                    state.message,
                    extra=self.extra(),
                )
            self.set_state(state)
            return state

    def _tag_slots(self) -> TagSlots | None:
        """The run's tag concurrency limits, if it has tags and a server to ask."""
        if not self.run.tags:
            return None
        from ._concurrency._tags import tag_slots

        return tag_slots(self.run.tags, self.run.id, get_runtime().settings)

    def _take_tag_slots(self, tag_slots: TagSlots) -> Generator[Any, Any, Lease | State | None]:
        """Steps that take a slot of each of the run's tag limits (waiting in
        AwaitingConcurrencySlot if one is full): the lease, or the state the run ends in."""
        try:
            return (yield from tag_slots.take(self._awaiting_slot, self._flow_run_cancelling))
        except ConcurrencySlotAcquisitionError as exc:
            return Failed(message=f"Not run: {exc}").with_result(exception=exc)
        except CancelledRun as exc:
            return Cancelled(message=str(exc)).with_result(exception=exc)

    def _awaiting_slot(self, message: str) -> None:
        self.set_state(AwaitingConcurrencySlot(message=message))

    def _wait_for_upstream(self) -> Generator[Any, Any, None]:
        for item in self.wait_for or ():
            allowed = isinstance(item, allow_failure)
            upstream = item.value if allowed else item
            if isinstance(upstream, BatonFuture | State):
                yield from resolve(upstream, allowed)  # raises UpstreamTaskError if not allowed
        arguments = self.bound.arguments
        for name, value in arguments.items():
            if type(value) not in SCALARS and needs_resolving(value):
                arguments[name] = yield from resolve(value)

    def _should_retry(self, state: State) -> bool:
        task, run = self.task, self.run
        if run.run_count > task.retries:
            return False
        if task.retry_condition_fn is None:
            return True
        try:
            return bool(task.retry_condition_fn(task, run, state))
        except Exception:
            task_run_logger.exception("retry_condition_fn raised; not retrying", extra=self.extra())
            return False

    def _state_from(self, outcome: Outcome) -> State:
        if outcome.timed_out:
            return TimedOut(message=str(outcome.exc)).with_result(exception=outcome.exc)
        exc = outcome.exc
        if isinstance(exc, RunInterrupted | asyncio.CancelledError):
            message = (
                "Interrupted: the run it belongs to timed out"  # sync code is stopped this way
                if isinstance(exc, RunInterrupted)
                else "Interrupted: its coroutine was cancelled (the run it belongs to timed out or stopped)"
            )
            return Cancelled(message=message).with_result(exception=CancelledRun(message))
        if exc is not None:
            if not isinstance(exc, Exception):
                return Crashed(message=f"Crashed: {type(exc).__name__} {exc}".rstrip()).with_result(
                    exception=exc
                )
            return Failed(message=format_exception(exc)).with_result(exception=exc)
        value = outcome.value
        returned = state_from_return(value)
        if returned is not None:
            made = returned is value and returned.type is StateType.COMPLETED  # a user's Completed(data=...)
            if made and returned._result is not None and self.persist_result:
                self._persist(returned, returned._result)
            return returned
        state = completed(value)
        if self.flow_ctx is not None:
            self.flow_ctx.link_result(value, self.run.id)
        if self.persist_result:
            self._persist(state, value)
        return state

    # --- results and cache ------------------------------------------------------------------

    def _persist(self, state: State, value: Any) -> None:
        cache_key = self.run.cache_key
        try:
            key = CacheIndex.result_key(cache_key) if cache_key else None
            state.data = persist(value, self.store, self.serializer, key)
            if cache_key:
                CacheIndex(self.store).record(cache_key, state.data, self.task.cache_expiration)
        except Exception as exc:
            task_run_logger.warning(
                "The result could not be persisted (%r); it is kept in memory only.",
                exc,
                extra=self.extra(),
            )

    def _cache_lookup(self) -> State | None:
        task = self.task
        try:
            if task.cache_key_fn is not None:
                cache_key = task.cache_key_fn(self.ctx, self.bound.arguments)
            else:
                assert task.cache_policy is not None
                cache_key = policy_key(task.cache_policy, self.ctx, self.bound.arguments)
        except ValueError as exc:  # a policy's clear refusal (unhashable arguments)
            task_run_logger.warning("Not cached: %s", exc, extra=self.extra())
            return None
        except Exception:
            task_run_logger.exception("cache_key_fn raised; not caching", extra=self.extra())
            return None
        if not cache_key:
            return None
        self.run.cache_key = cache_key
        if task.refresh_cache:
            return None
        index = CacheIndex(self.store)
        ref = index.lookup(cache_key)
        if ref is None:
            return None
        try:
            value = load(ref, self.store)
        except Exception as exc:
            task_run_logger.warning("Cached result unreadable (%r); running", exc, extra=self.extra())
            return None
        if self.flow_ctx is not None:
            self.flow_ctx.link_result(value, self.run.id)
        hit = Cached().with_result(value)
        hit.data = ref
        return hit


def new_task_run(
    task: TaskDefinition[..., Any],
    bound: inspect.BoundArguments,
    wait_for: Iterable[Any] | None,
    flow_ctx: FlowRunContext | None,
    upstream: dict[str, list[Any]] | None = None,
) -> TaskRunEngine:
    """The engine of one call of `task`: its run recorded, Pending, and ready to run."""
    wait_list = list(wait_for) if wait_for is not None else None
    if flow_ctx is not None:
        store, serializer, reporter = flow_ctx.result_store, flow_ctx.serializer, flow_ctx.reporter
        persist_default = flow_ctx.persist_results
        dynamic_key = flow_ctx.next_dynamic_key(task.task_key)
        inputs = collect_inputs(bound.arguments, flow_ctx, wait_list, upstream)
    else:
        runtime = get_runtime()
        store, reporter = runtime.result_store, None
        serializer = resolve_serializer(None, runtime.settings.result_serializer)
        persist_default = runtime.settings.persist_results
        dynamic_key, inputs = "0", {}
    if task.result_storage is not None:
        store = as_store(task.result_storage)
    if task.result_serializer is not None:
        serializer = resolve_serializer(task.result_serializer)
    persist = task.persist_result
    if persist is None:
        persist = task.caches or persist_default
    run = TaskRunRecord(
        id=uuid4(),
        flow_run_id=flow_ctx.flow_run.id if flow_ctx is not None else None,
        name=(
            f"{task.name}-{dynamic_key}"
            if task.task_run_name is None
            else render_run_name(task.task_run_name, bound.arguments, "task_run_name")
        ),
        task_key=task.task_key,
        dynamic_key=dynamic_key,
        tags=with_current_tags(task.tags),
        task_inputs=inputs,
    )
    engine = TaskRunEngine(
        task, run, bound.arguments, bound, wait_list, flow_ctx, reporter, store, serializer, persist
    )
    engine.set_state(pending())
    return engine


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
    return {
        name: [TaskInput(input_type=TaskInputType.TASK_RUN, id=run_id) for run_id in dict.fromkeys(ids)]
        for name, ids in found.items()
    }


def _visit(value: Any, flow_ctx: FlowRunContext, ids: list[Any], depth: int) -> None:
    if isinstance(value, quote):
        return
    if isinstance(value, allow_failure):
        value = value.value
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
