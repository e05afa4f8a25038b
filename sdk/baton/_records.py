"""The engine's records of the runs it drives: plain data, what the reporter reads to report.

`TaskRunRecord.to_info()` is what the tracker upserts for a task run; `version` orders its
states. Records change as a run goes on: a reporter reads one when it sends, not when handed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from baton_schemas.runs import RetryPolicy, TaskInput, TaskRunInfo
    from baton_schemas.states import State


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
