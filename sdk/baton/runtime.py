"""The run this code is part of, as the reference system's `runtime` module has it:

    from baton.runtime import deployment, flow_run, task_run

    flow_run.id, flow_run.name, flow_run.flow_name, flow_run.parameters, flow_run.tags,
    flow_run.run_count; task_run.id, task_run.name, task_run.task_name, task_run.parameters,
    task_run.tags, task_run.run_count; deployment.id, deployment.name

Each attribute is read when asked, from the run in progress here; outside a run it is None
(an empty dict or list for parameters and tags). A deployment run's process also knows its run
and deployment from the worker (`BATON_FLOW_RUN_ID`, `BATON_DEPLOYMENT_ID`,
`BATON_DEPLOYMENT_NAME`), before its flow has started.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from ._context import FlowRunContext, TaskRunContext, flow_run_ctx, task_run_ctx

__all__ = ["deployment", "flow_run", "task_run"]


def _flow_ctx() -> FlowRunContext | None:
    task_ctx = task_run_ctx.get()
    if task_ctx is not None and task_ctx.flow_run_context is not None:
        return task_ctx.flow_run_context
    return flow_run_ctx.get()


def _env_uuid(name: str) -> UUID | None:
    value = os.environ.get(name)
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


class _FlowRun:
    """The flow run in progress (a task's flow run, inside a task)."""

    @property
    def id(self) -> UUID | None:
        ctx = _flow_ctx()
        return ctx.flow_run.id if ctx is not None else _env_uuid("BATON_FLOW_RUN_ID")

    @property
    def name(self) -> str | None:
        ctx = _flow_ctx()
        return ctx.flow_run.name if ctx is not None else None

    @property
    def flow_name(self) -> str | None:
        ctx = _flow_ctx()
        return ctx.flow_run.flow_name if ctx is not None else None

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = _flow_ctx()
        return dict(ctx.flow_run.parameters) if ctx is not None else {}

    @property
    def tags(self) -> list[str]:
        ctx = _flow_ctx()
        return list(ctx.flow_run.tags) if ctx is not None else []

    @property
    def run_count(self) -> int:
        ctx = _flow_ctx()
        return ctx.flow_run.run_count if ctx is not None else 0

    @property
    def parent_flow_run_id(self) -> UUID | None:
        ctx = _flow_ctx()
        return ctx.flow_run.parent_flow_run_id if ctx is not None else None


class _TaskRun:
    """The task run in progress."""

    @staticmethod
    def _ctx() -> TaskRunContext | None:
        return task_run_ctx.get()

    @property
    def id(self) -> UUID | None:
        ctx = self._ctx()
        return ctx.task_run.id if ctx is not None else None

    @property
    def name(self) -> str | None:
        ctx = self._ctx()
        return ctx.task_run.name if ctx is not None else None

    @property
    def task_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.task.name if ctx is not None else None

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = self._ctx()
        return dict(ctx.parameters) if ctx is not None else {}

    @property
    def tags(self) -> list[str]:
        ctx = self._ctx()
        return list(ctx.task_run.tags) if ctx is not None else []

    @property
    def run_count(self) -> int:
        ctx = self._ctx()
        return ctx.task_run.run_count if ctx is not None else 0


class _Deployment:
    """The deployment whose run this is (None for a run started by calling the flow)."""

    @property
    def id(self) -> UUID | None:
        ctx = _flow_ctx()
        if ctx is not None and ctx.flow_run.deployment_id is not None:
            return ctx.flow_run.deployment_id
        return _env_uuid("BATON_DEPLOYMENT_ID")

    @property
    def name(self) -> str | None:
        return os.environ.get("BATON_DEPLOYMENT_NAME") or None if self.id is not None else None


flow_run = _FlowRun()
task_run = _TaskRun()
deployment = _Deployment()
