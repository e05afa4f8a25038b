"""The life of one flow run, written once for sync and async flows.

Pending (created) -> Running -> Completed / Failed / TimedOut / Crashed. Each flow-run
transition is proposed to the reporter and its verdict followed: WAIT (propose again later),
REJECT into a Scheduled state (AwaitingRetry: wait for its time, then propose Retrying), REJECT
into another state (adopt it), ABORT (stop). A `None` verdict means nobody orchestrates this
run (no server, or it is unreachable): the engine applies the flow's retry policy itself.

A run claimed by a worker (`claim_id` set) proposes under its claim, so the server can tell a
process left over from a lost claim; when the server sends it back to Scheduled (a retry), the
engine stops there: the server dispatches it again, to any worker. A run found Cancelling ends
Cancelled.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Generator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from pydantic_core import to_jsonable_python

from baton_schemas.envelopes import ProposeState
from baton_schemas.names import run_name
from baton_schemas.runs import FlowRun, FlowRunCreate, RetryPolicy
from baton_schemas.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
    TransitionResult,
    Verdict,
)

from . import _tracing
from ._context import FlowRunContext, flow_run_ctx, flow_run_tags, task_run_ctx, with_current_tags
from ._definitions import render_run_name
from ._drivers import Call, Outcome, drive_async, drive_sync
from ._exceptions import Abort, CancelledRun, Suspend
from ._final_state import adopt_returned_state, futures_to_states, mark, state_from_return
from ._hooks import run_hooks
from ._logging import flow_run_logger, format_state, patch_print, run_extra
from ._records import FlowRunRecord, TaskRunRecord
from ._results import as_store, persist, resolve_serializer
from ._runtime import Runtime, get_runtime
from ._settings import CLAIM_ID_ENV
from ._task_engine import format_exception
from ._tracing import TRACEPARENT_ENV

if TYPE_CHECKING:
    from ._definitions import FlowDefinition

Steps = Generator[Any, Any, Any]
NOT_RETURNED: Any = object()
FLUSH_BEFORE_END_SECONDS = 5.0


def _copy_state(state: State) -> State:
    """The same state for another run (the parent's task run of a subflow): a new id."""
    copy = State(
        type=state.type,
        name=state.name,
        message=state.message,
        data=state.data,
        scheduled_time=state.scheduled_time,
    )
    return copy.with_result(state._result, state._exception)


class FlowRunEngine:
    def __init__(
        self,
        flow: FlowDefinition[..., Any],
        bound: inspect.BoundArguments,
        runtime: Runtime,
        existing: FlowRun | None = None,
        claim_id: UUID | None = None,
    ) -> None:
        """`existing`: a run created elsewhere (a deployment run claimed by a worker): the
        engine runs it instead of creating one. `claim_id`: the worker's claim of it."""
        self.flow = flow
        self.bound = bound
        self.reporter = runtime.reporter
        self.existing = existing
        self.claim_id = claim_id if existing is not None else None
        self.parent = flow_run_ctx.get() if existing is None else None
        self.parent_run: TaskRunRecord | None = None
        if self.parent is not None:
            self.parent_run = self._parent_task_run(self.parent)
        self.record = FlowRunRecord(
            id=existing.id if existing else uuid4(),
            name=existing.name if existing else self._new_name(flow, bound),
            flow_name=flow.name,
            parameters=to_jsonable_python(bound.arguments, fallback=repr),
            tags=existing.tags if existing else with_current_tags(flow.tags),
            retry_policy=(
                existing.retry_policy
                if existing
                else RetryPolicy(retries=flow.retries, retry_delay_seconds=flow.retry_delay_seconds)
            ),
            parent_flow_run_id=self.parent.flow_run.id if self.parent is not None else None,
            parent_task_run_id=self.parent_run.id if self.parent_run is not None else None,
            run_count=existing.run_count if existing else 0,
            flow_id=existing.flow_id if existing else None,
            deployment_id=existing.deployment_id if existing else None,
        )
        store = runtime.result_store
        if flow.result_storage is not None:
            store = as_store(flow.result_storage)
        serializer = resolve_serializer(flow.result_serializer, runtime.settings.result_serializer)
        persist_results = (
            flow.persist_result
            if flow.persist_result is not None
            else (self.parent.persist_results if self.parent else runtime.settings.persist_results)
        )
        self.ctx = FlowRunContext(
            flow=flow,
            flow_run=self.record,
            reporter=self.reporter,
            task_runner=flow.task_runner.duplicate(),
            result_store=store,
            serializer=serializer,
            log_prints=flow.log_prints,
            persist_results=persist_results,
            claim_id=self.claim_id,
        )
        if flow.log_prints:
            patch_print()
        self._extra = run_extra(self.ctx)
        # What the flow function returned (futures made states), for `Flow.__call__`.
        self.returned: Any = NOT_RETURNED

    @staticmethod
    def _new_name(flow: FlowDefinition[..., Any], bound: inspect.BoundArguments) -> str:
        if flow.flow_run_name is None:
            return run_name()
        return render_run_name(flow.flow_run_name, bound.arguments, "flow_run_name")

    # --- drivers ----------------------------------------------------------------------------

    def run_sync(self) -> State:
        if _tracing.enabled():  # the flow run's span; nothing at all when traces are off
            with _tracing.span(
                f"flow {self.flow.name}", parent=self._trace_parent(), attributes=self._attrs()
            ):
                return self._run_sync()
        return self._run_sync()

    async def run_async(self) -> State:
        if _tracing.enabled():
            with _tracing.span(
                f"flow {self.flow.name}", parent=self._trace_parent(), attributes=self._attrs()
            ):
                return await self._run_async()
        return await self._run_async()

    def _span_name(self) -> str:
        return f"flow {self.flow.name}"

    def _trace_parent(self) -> str | None:
        """A run made elsewhere continues the trace its worker passed on; a subflow is a child
        of the current span (its parent flow's or task's)."""
        return os.environ.get(TRACEPARENT_ENV) if self.existing is not None else None

    def _attrs(self) -> dict[str, Any]:
        return {"baton.flow_run.id": self.record.id, "baton.flow_run.name": self.record.name}

    def _run_sync(self) -> State:
        token, task_token = flow_run_ctx.set(self.ctx), task_run_ctx.set(None)
        try:
            with flow_run_tags(self.record.tags):
                return drive_sync(self.steps())  # type: ignore[no-any-return]
        finally:
            task_run_ctx.reset(task_token)
            flow_run_ctx.reset(token)

    async def _run_async(self) -> State:
        token, task_token = flow_run_ctx.set(self.ctx), task_run_ctx.set(None)
        try:
            with flow_run_tags(self.record.tags):
                return await drive_async(self.steps())  # type: ignore[no-any-return]
        finally:
            task_run_ctx.reset(task_token)
            flow_run_ctx.reset(token)

    # --- states -----------------------------------------------------------------------------

    def _log_state(self, state: State) -> None:
        if state.is_terminal:
            text = f"Finished in state {format_state(state)}"
        elif state.type is StateType.PENDING:
            text = f"Created flow run {self.record.name!r} for flow {self.flow.name!r}"
        else:
            text = f"Entered state {format_state(state)}"
        flow_run_logger.info(text, extra=self._extra)

    def _commit(self, state: State) -> None:
        self.record.state = mark(state, self.record.id)
        self._log_state(state)
        run_hooks(self.flow, self.record, state, flow_run_logger, self._extra)
        parent_run = self.parent_run
        if parent_run is not None and self.parent is not None and state.type is not StateType.PENDING:
            if state.is_terminal or parent_run.state is None or parent_run.state.is_pending():
                self._report_parent(_copy_state(state) if state.is_terminal else Running())

    def _parent_task_run(self, parent: FlowRunContext) -> TaskRunRecord:
        """Subflow: the task run that stands for this call in the parent flow run."""
        key = f"{self.flow.fn.__module__}.{self.flow.fn.__qualname__}"
        dynamic_key = parent.next_dynamic_key(key)
        run = TaskRunRecord(
            id=uuid4(),
            flow_run_id=parent.flow_run.id,
            name=f"{self.flow.name}-{dynamic_key}",
            task_key=key,
            dynamic_key=dynamic_key,
            tags=with_current_tags(self.flow.tags),
            task_inputs={},
        )
        self.parent_run = run
        self._report_parent(Pending())
        return run

    def _report_parent(self, state: State) -> None:
        run = self.parent_run
        assert run is not None
        run.version += 1
        run.state = state
        self.reporter.report_task_run_state(run, state, run.version)

    @staticmethod
    def _await(future: Future[Any]) -> Steps:
        if not future.done():
            yield future
        try:
            return future.result()
        except Exception as exc:  # a reporter must never break the run
            flow_run_logger.warning("Baton reporter failed: %r; going on locally.", exc)
            return None

    def _propose(self, state: State) -> Generator[Any, Any, TransitionResult | None]:
        while True:
            proposal = ProposeState(
                flow_run_id=self.record.id, state=state, transition_id=uuid4(), claim_id=self.claim_id
            )
            result: TransitionResult | None = yield from self._await(self.reporter.propose_state(proposal))
            if result is None or result.verdict is not Verdict.WAIT:
                return result
            yield float(result.delay_seconds or 1.0)

    def _sleep_until(self, state: State) -> Steps:
        when = state.scheduled_time
        if when is not None:
            delay = (when - datetime.now(UTC)).total_seconds()
            if delay > 0:
                yield delay

    # --- the run ----------------------------------------------------------------------------

    def steps(self) -> Generator[Any, Any, State]:
        flow, record = self.flow, self.record
        create = FlowRunCreate(
            id=record.id,
            flow_name=flow.name,
            name=record.name,
            parameters=record.parameters,
            tags=record.tags,
            parent_task_run_id=record.parent_task_run_id,
            parent_flow_run_id=record.parent_flow_run_id,
            state=Pending(),
            retry_policy=record.retry_policy,
        )
        if self.existing is None:
            created = yield from self._await(self.reporter.create_flow_run(create))
            if created is not None:
                record.flow_id, record.deployment_id = created.flow_id, created.deployment_id
            self._commit(create.state)  # type: ignore[arg-type]
        else:
            self.record.state = self.existing.state
        self.reporter.track_flow_run(record.id)
        clean_exit = False
        try:
            final = yield from self._attempts()
            clean_exit = final.name != "TimedOut"  # don't wait for what the timeout abandoned
            return final
        finally:
            self.reporter.untrack_flow_run(record.id)
            self.ctx.task_runner.shutdown(wait=clean_exit)

    def _attempts(self) -> Generator[Any, Any, State]:
        flow, record = self.flow, self.record
        while True:
            stopped = yield from self._begin()
            if stopped is not None:
                return stopped
            record.run_count += 1
            self.ctx.futures.clear()  # the end of an attempt waits for its own task runs
            outcome: Outcome = yield Call(
                flow.fn, self.bound.args, self.bound.kwargs, flow.timeout_seconds, f"Flow run {record.name!r}"
            )
            if isinstance(outcome.exc, Suspend):
                return (yield from self._end_suspended(outcome.exc.state))
            state = yield from self._state_from(outcome)
            if state.type is StateType.CRASHED:
                self._cancel_futures()
                yield from self._propose(state)
                self._commit(state)
                assert outcome.exc is not None
                raise outcome.exc
            if outcome.timed_out:
                self._cancel_futures()
            final = yield from self._finish(state)
            if final is not None:
                return final

    def _begin(self) -> Generator[Any, Any, State | None]:
        """Propose Running (Retrying after the first attempt); None means: go."""
        while True:
            proposed = Running() if self.record.run_count == 0 else Retrying()
            result = yield from self._propose(proposed)
            if result is None or result.verdict is Verdict.ACCEPT:
                self._commit(proposed)
                return None
            if result.verdict is Verdict.ABORT:
                raise Abort(result.reason or "the orchestrator aborted this flow run")
            server = result.state
            if server is None or server.is_terminal:
                final = adopt_returned_state(server or Failed(message=result.reason))
                self._commit(final)
                return final
            if server.type is StateType.CANCELLING:
                return (yield from self._end_cancelled(server))
            if server.is_scheduled():
                self._commit(server)
                if self.claim_id is not None:  # the server dispatches it again
                    return server
                yield from self._sleep_until(server)
            else:
                yield float(result.delay_seconds or 1.0)

    def _finish(self, state: State) -> Generator[Any, Any, State | None]:
        """Propose the attempt's final state; None means: retry."""
        # The server gets the attempt's task-run states and logs before the run's end.
        yield from self._await(self.reporter.flush(FLUSH_BEFORE_END_SECONDS))
        result = yield from self._propose(state)
        if result is None:  # nobody orchestrates: our own retry policy (a claimed run: the server's)
            if state.is_failed() and self.claim_id is None and self.record.run_count <= self.flow.retries:
                awaiting = AwaitingRetry(delay_seconds=self.flow.retry_delay_seconds)
                self._commit(awaiting)
                yield from self._sleep_until(awaiting)
                return None
            self._commit(state)
            return state
        if result.verdict is Verdict.ACCEPT:
            self._commit(state)
            return state
        if result.verdict is Verdict.ABORT:
            flow_run_logger.warning(
                "The orchestrator aborted the final state: %s", result.reason, extra=self._extra
            )
            self._commit(state)
            return state
        server = result.state
        if server is not None and server.type is StateType.CANCELLING:
            return (yield from self._end_cancelled(server))
        if server is not None and server.is_scheduled():  # AwaitingRetry: the server retries us
            self._commit(server)
            if self.claim_id is not None:  # ... on whichever worker claims it next
                return server
            yield from self._sleep_until(server)
            return None
        final = adopt_returned_state(server) if server is not None else state
        if final is not state and final.type is state.type:
            final.with_result(state._result, state._exception)
        self._commit(final)
        return final

    def _end_cancelled(self, cancelling: State) -> Generator[Any, Any, State]:
        """The run is being cancelled: it ends Cancelled (whatever the server answers, it is done)."""
        state = Cancelled(message=cancelling.message or "cancelled")
        state.with_result(exception=CancelledRun(state.message or "cancelled"))
        result = yield from self._propose(state)
        server = result.state if result is not None else None
        final = adopt_returned_state(server) if server is not None and server.is_terminal else state
        self._commit(final)
        return final

    def _end_suspended(self, suspended: State) -> Generator[Any, Any, State]:
        """`suspend_flow_run` made the run Suspended: this process ends; a worker starts the run
        again once it is resumed. Task runs that have not started will run then."""
        self._cancel_futures()
        yield from self._await(self.reporter.flush(FLUSH_BEFORE_END_SECONDS))
        self._commit(suspended)
        return suspended

    def _cancel_futures(self) -> None:
        """The attempt ended early: task runs that have not started never will."""
        for future in self.ctx.futures:
            if future._future.cancel():
                run = future.task_run
                state = Cancelled(message=f"{self.record.name!r} ended before it started")
                state.with_result(exception=CancelledRun(state.message or ""))
                run.version += 1
                run.state = state
                self.reporter.report_task_run_state(run, state, run.version)

    def _state_from(self, outcome: Outcome) -> Generator[Any, Any, State]:
        self.returned = NOT_RETURNED
        if outcome.timed_out:
            return TimedOut(message=str(outcome.exc)).with_result(exception=outcome.exc)
        exc = outcome.exc
        if exc is not None and not isinstance(exc, Exception):
            return Crashed(message=f"Crashed: {type(exc).__name__} {exc}".rstrip()).with_result(exception=exc)
        # Like leaving a task runner's scope: wait for every task run submitted in this attempt.
        for future in self.ctx.futures:
            if not future.done():
                yield future._future
        if exc is not None:
            return Failed(message=format_exception(exc)).with_result(exception=exc)
        value = futures_to_states(outcome.value)
        self.returned = value
        returned = state_from_return(value)
        if returned is not None:
            if returned is value and returned.is_completed() and returned._result is not None:
                self._persist(returned)  # a Completed(data=...) the flow made
            return returned
        state = Completed().with_result(value)
        self._persist(state)
        return state

    def _persist(self, state: State) -> None:
        if self.ctx.persist_results:
            try:
                state.data = persist(state._result, self.ctx.result_store, self.ctx.serializer)
            except Exception as error:
                flow_run_logger.warning("The result could not be persisted (%r)", error, extra=self._extra)


def call_result(engine: FlowRunEngine, state: State) -> Any:
    """What calling the flow gives: the value it returned (with its futures made states, even
    when they failed: the run is Failed, the call returns them); for a returned state, or
    when it raised, `state.result()` (raising the run's exception if it did not complete)."""
    value = engine.returned
    if value is not NOT_RETURNED and not isinstance(value, State) and state.is_terminal:
        return value
    return state.result()


def run_existing_flow_run(
    flow: FlowDefinition[..., Any],
    flow_run: FlowRun,
    runtime: Runtime | None = None,
    *,
    claim_id: UUID | None = None,
) -> State | Any:
    """Run a flow run that already exists on the server (e.g. claimed by a worker) with its
    stored parameters; returns the final State (a coroutine of it for an async flow).

    `claim_id` (default: `$BATON_CLAIM_ID`, set by the worker) goes with every proposal."""
    if claim_id is None and os.environ.get(CLAIM_ID_ENV):
        claim_id = UUID(os.environ[CLAIM_ID_ENV])
    bound = flow._validator.bind((), dict(flow_run.parameters))
    engine = FlowRunEngine(flow, bound, runtime or get_runtime(), existing=flow_run, claim_id=claim_id)
    return engine.run_async() if flow.isasync else engine.run_sync()
