"""Pages of the API's listings: the items, and the cursor that fetches what comes after them.

    GET /api/flow_runs?limit=50            -> FlowRunPage
    GET /api/flow_runs?cursor=<next_cursor> -> the next page

A cursor is opaque: pass back what the API returned. `next_cursor` is None after the last page
of flow runs and task runs; a log page always carries one (the position to follow the run's
logs from).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._base import BatonModel
from .logs import LogRecord
from .runs import FlowRun, TaskRun

T = TypeVar("T")


class Page(BatonModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class FlowRunPage(Page[FlowRun]):
    """`GET /api/flow_runs`, newest first."""


class TaskRunPage(Page[TaskRun]):
    """`GET /api/task_runs?flow_run_id=...`, in creation order."""


class LogPage(Page[LogRecord]):
    """`GET /api/logs`, in the order they were stored."""


__all__ = ["FlowRunPage", "LogPage", "Page", "TaskRunPage"]
