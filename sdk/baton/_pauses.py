"""Pausing a flow run for input, as the reference system has it.

    from baton import RunInput, pause_flow_run, resume_flow_run, suspend_flow_run

    class Approval(RunInput):
        approved: bool
        note: str = ""

    @flow
    def publish() -> None:
        answer = pause_flow_run(wait_for_input=Approval, timeout=3600)   # await it in an async flow
        ...

    resume_flow_run(run_id, run_input={"approved": True})   # or `baton flow-run resume ID --input`

`pause_flow_run` keeps the process: the run is Paused (its lease kept alive) and the call polls
until the run is resumed, then returns the input, validated by the model. `suspend_flow_run`
ends the process (the run is Suspended, its worker's slot free); resumed, the run is scheduled
again and a worker runs its flow from the start: tasks with a cache policy come from the cache,
and the pause, already answered, returns its input at once. A pause that times out fails the
run (`FlowPauseTimeout` in the flow). `wait_for_input` may also be a type (`str`, `int`, ...):
the input is then `{"value": ...}` and the call returns the value.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, create_model

from baton_schemas.pauses import PauseFlowRun
from baton_schemas.states import State, StateType, Verdict

from ._context import FlowRunContext, flow_run_ctx, task_run_ctx
from ._deployments import aconnect
from ._exceptions import BatonError, CancelledRun, FlowPauseTimeout, MissingContextError, Suspend
from ._logging import flow_run_logger, format_state, run_extra

__all__ = ["FlowPauseTimeout", "RunInput", "pause_flow_run", "resume_flow_run", "suspend_flow_run"]

M = TypeVar("M", bound=BaseModel)
DEFAULT_TIMEOUT_SECONDS = 3600.0
DEFAULT_POLL_SECONDS = 10.0
FLUSH_BEFORE_PAUSE_SECONDS = 5.0


class RunInput(BaseModel):
    """The base of an input model a pause waits for (any pydantic model will do)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def with_initial_data(cls: type[M], **defaults: Any) -> type[M]:
        """The same model with these defaults (what a form shows first)."""
        fields: Any = {name: (cls.model_fields[name].annotation, value) for name, value in defaults.items()}
        return create_model(cls.__name__, __base__=cls, **fields)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _model_of(wait_for_input: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model the input must fit, and whether it wraps a plain type as `value`."""
    if wait_for_input is None:
        return None, False
    if isinstance(wait_for_input, type) and issubclass(wait_for_input, BaseModel):
        return wait_for_input, False
    wrapped: type[BaseModel] = create_model("RunInputValue", __base__=RunInput, value=(wait_for_input, ...))
    return wrapped, True


def _validated(model: type[BaseModel] | None, wraps: bool, value: Any) -> Any:
    if model is None:
        return None
    parsed = model.model_validate(value)
    return parsed.value if wraps else parsed  # type: ignore[attr-defined]


def _context(what: str) -> FlowRunContext:
    ctx = flow_run_ctx.get()
    if ctx is None:
        raise MissingContextError(f"{what}() must be called inside a flow run")
    if task_run_ctx.get() is not None:
        raise BatonError(f"{what}() pauses a flow run: call it in the flow, not in one of its tasks")
    return ctx


async def _pause(
    what: str,
    wait_for_input: Any,
    timeout: float | None,
    poll_interval: float,
    key: str | None,
    reschedule: bool,
) -> Any:
    ctx = _context(what)
    record = ctx.flow_run
    if reschedule and record.deployment_id is None:
        raise BatonError(
            f"{what}(): flow run {record.name!r} is not a deployment's, so no worker could start it "
            "again; use pause_flow_run() to wait in this process"
        )
    model, wraps = _model_of(wait_for_input)
    key = key or f"pause-{int(ctx.next_dynamic_key('baton.pause')) + 1}"
    extra = run_extra(ctx)
    async with aconnect() as client:
        given = await client.read_flow_run_input(record.id, key)
        if given is not None:  # answered before this process: a suspended run's flow again
            flow_run_logger.info("Pause %r was resumed already; going on", key, extra=extra)
            return _validated(model, wraps, given.value)
        # the server gets the task-run states and logs so far before the run pauses
        await asyncio.wrap_future(ctx.reporter.flush(FLUSH_BEFORE_PAUSE_SECONDS))
        request = PauseFlowRun(
            key=key,
            timeout_seconds=timeout,
            reschedule=reschedule,
            input_schema=model.model_json_schema() if model is not None else None,
            claim_id=ctx.claim_id,
        )
        result = await client.pause_flow_run(record.id, request)
        if result.verdict is not Verdict.ACCEPT or result.state is None:
            raise BatonError(f"{what}(): the server did not pause the run: {result.reason or result.verdict}")
        if reschedule:
            raise Suspend(result.state)  # the engine ends the run's process
        record.state = result.state
        flow_run_logger.info("Entered state %s", format_state(result.state), extra=extra)
        state = await _wait_while_paused(client, record.id, poll_interval)
        record.state = state
        flow_run_logger.info("Resumed from pause %r", key, extra=extra)
        given = await client.read_flow_run_input(record.id, key)
    return _validated(model, wraps, given.value if given is not None else None)


async def _wait_while_paused(client: Any, run_id: UUID, poll_interval: float) -> State:
    while True:
        await asyncio.sleep(poll_interval)
        state: State = (await client.read_flow_run(run_id)).state
        if state.type is StateType.PAUSED:
            continue
        if state.type is StateType.RUNNING:
            return state
        if state.type in (StateType.CANCELLED, StateType.CANCELLING):
            raise CancelledRun(state.message or "cancelled while paused")
        raise FlowPauseTimeout(f"the run was paused and not resumed: {format_state(state)}")


def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    key: str | None = None,
) -> Any:
    """Pause the current flow run until it is resumed (or `timeout` seconds pass: the run
    fails); returns the input it was resumed with, validated by `wait_for_input` (None without
    one). The process waits, polling every `poll_interval` seconds. In an async flow, await it."""
    coro = _pause("pause_flow_run", wait_for_input, timeout, poll_interval, key, reschedule=False)
    return coro if _in_event_loop() else asyncio.run(coro)


def suspend_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    key: str | None = None,
) -> Any:
    """Suspend the current deployment run: its process ends here and its worker's slot is free.
    Resumed, the run is started again by a worker and its flow runs from the start; this call
    then returns the input at once. In an async flow, await it."""
    coro = _pause("suspend_flow_run", wait_for_input, timeout, 0.0, key, reschedule=True)
    return coro if _in_event_loop() else asyncio.run(coro)


async def _resume(flow_run_id: UUID | str, run_input: Any) -> State:
    if isinstance(run_input, BaseModel):
        run_input = run_input.model_dump(mode="json")
    async with aconnect() as client:
        result = await client.resume_flow_run(UUID(str(flow_run_id)), run_input)
    assert result.state is not None
    return result.state


def resume_flow_run(flow_run_id: UUID | str, run_input: dict[str, Any] | BaseModel | None = None) -> Any:
    """Resume a paused flow run with `run_input` (a dict or a model), checked by the server
    against what the pause waits for (RequestRejected, 422, naming the field; 409 for a run that
    is not paused). Returns the run's new State; in async code, a coroutine of it to await
    (so typed `Any`, as the reference system's sync-compatible functions are)."""
    coro = _resume(flow_run_id, run_input)
    return coro if _in_event_loop() else asyncio.run(coro)
