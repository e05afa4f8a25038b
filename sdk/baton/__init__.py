"""Baton: flows and tasks, orchestrated broker-first.

    from baton import flow, task

    @task(retries=2)
    def fetch(url: str) -> bytes: ...

    @flow(log_prints=True)
    def etl() -> None: ...

`import baton` is cheap: names are loaded on first use, so nothing heavy (pydantic, httpx,
the AMQP client) is imported until a flow actually runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from baton_schemas.states import State, StateType

    from . import artifacts, runtime, states, variables
    from ._cache import task_input_hash
    from ._concurrency import arate_limit, concurrency, rate_limit
    from ._context import FlowRunContext, TaskRunContext, get_run_context, tags
    from ._deployments import arun_deployment, get_client, run_deployment
    from ._events import emit_event
    from ._exceptions import (
        Abort,
        BatonError,
        CancelledRun,
        ConcurrencyLimitNotFound,
        ConcurrencySlotAcquisitionError,
        ConcurrencySlotTimeout,
        CrashedRun,
        FailedRun,
        FlowPauseTimeout,
        MissingContextError,
        ParameterValidationError,
        RunTimeoutError,
        UpstreamTaskError,
    )
    from ._flows import Flow, flow
    from ._futures import BatonFuture, BatonFutureList, as_completed, unmapped, wait
    from ._inputs import allow_failure, quote
    from ._logging import get_run_logger
    from ._pauses import RunInput, pause_flow_run, resume_flow_run, suspend_flow_run
    from ._results import JSONSerializer, LocalResultStore, PickleSerializer
    from ._retries import exponential_backoff
    from ._task_runners import ThreadPoolTaskRunner
    from ._tasks import Task, task

_EXPORTS: dict[str, str] = {
    "flow": "._flows",
    "Flow": "._flows",
    "allow_failure": "._inputs",
    "quote": "._inputs",
    "task": "._tasks",
    "Task": "._tasks",
    "get_run_logger": "._logging",
    "get_run_context": "._context",
    "tags": "._context",
    "run_deployment": "._deployments",
    "get_client": "._deployments",
    "emit_event": "._events",
    "concurrency": "._concurrency",
    "rate_limit": "._concurrency",
    "arate_limit": "._concurrency",
    "arun_deployment": "._deployments",
    "FlowRunContext": "._context",
    "TaskRunContext": "._context",
    "unmapped": "._futures",
    "wait": "._futures",
    "as_completed": "._futures",
    "BatonFuture": "._futures",
    "BatonFutureList": "._futures",
    "State": "baton_schemas.states",
    "StateType": "baton_schemas.states",
    "exponential_backoff": "._retries",
    "task_input_hash": "._cache",
    "ThreadPoolTaskRunner": "._task_runners",
    "LocalResultStore": "._results",
    "PickleSerializer": "._results",
    "JSONSerializer": "._results",
    "Abort": "._exceptions",
    "BatonError": "._exceptions",
    "CancelledRun": "._exceptions",
    "ConcurrencyLimitNotFound": "._exceptions",
    "ConcurrencySlotAcquisitionError": "._exceptions",
    "ConcurrencySlotTimeout": "._exceptions",
    "CrashedRun": "._exceptions",
    "FailedRun": "._exceptions",
    "MissingContextError": "._exceptions",
    "ParameterValidationError": "._exceptions",
    "RunTimeoutError": "._exceptions",
    "UpstreamTaskError": "._exceptions",
    "FlowPauseTimeout": "._exceptions",
    "RunInput": "._pauses",
    "pause_flow_run": "._pauses",
    "resume_flow_run": "._pauses",
    "suspend_flow_run": "._pauses",
}

__all__ = [
    "Abort",
    "BatonError",
    "BatonFuture",
    "BatonFutureList",
    "CancelledRun",
    "ConcurrencyLimitNotFound",
    "ConcurrencySlotAcquisitionError",
    "ConcurrencySlotTimeout",
    "CrashedRun",
    "FailedRun",
    "Flow",
    "FlowPauseTimeout",
    "FlowRunContext",
    "JSONSerializer",
    "LocalResultStore",
    "MissingContextError",
    "ParameterValidationError",
    "PickleSerializer",
    "RunInput",
    "RunTimeoutError",
    "State",
    "StateType",
    "Task",
    "TaskRunContext",
    "ThreadPoolTaskRunner",
    "UpstreamTaskError",
    "allow_failure",
    "arate_limit",
    "artifacts",
    "arun_deployment",
    "as_completed",
    "concurrency",
    "emit_event",
    "exponential_backoff",
    "flow",
    "get_client",
    "get_run_context",
    "get_run_logger",
    "pause_flow_run",
    "quote",
    "rate_limit",
    "resume_flow_run",
    "run_deployment",
    "runtime",
    "states",
    "suspend_flow_run",
    "tags",
    "task",
    "task_input_hash",
    "unmapped",
    "variables",
    "wait",
]


def __getattr__(name: str) -> Any:
    if name in ("states", "runtime", "variables", "artifacts"):
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'baton' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # next time: a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
