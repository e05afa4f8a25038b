"""Rows to models: one mapping per table."""

from __future__ import annotations

from typing import Any

import asyncpg

from baton_schemas.flows import Flow
from baton_schemas.logs import LogRecord
from baton_schemas.runs import FlowRun, RetryPolicy, TaskRun
from baton_schemas.states import State

Row = asyncpg.Record | dict[str, Any]

FLOW_RUN_COLUMNS = """fr.id, fr.name, fr.flow_id, f.name AS flow_name, f.slug AS flow_slug,
    fr.deployment_id, fr.parent_task_run_id, fr.parent_flow_run_id, fr.parameters, fr.tags,
    fr.idempotency_key, fr.state, fr.state_type, fr.state_name, fr.state_version,
    fr.next_scheduled_time, fr.run_count, fr.retries, fr.retry_delay_seconds,
    fr.expected_start_time, fr.start_time, fr.end_time, fr.work_pool_name, fr.work_queue_name,
    fr.job_variables, fr.worker_id, fr.claim_id, fr.lease_expires_at, fr.lease_seconds, fr.created,
    fr.updated, fr.reaped_version"""


def flow_from_row(row: Row) -> Flow:
    return Flow(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        description=row["description"],
        tags=list(row["tags"]),
        created=row["created"],
    )


def flow_run_from_row(row: Row) -> FlowRun:
    return FlowRun(
        id=row["id"],
        name=row["name"],
        flow_id=row["flow_id"],
        flow_name=row["flow_name"],
        deployment_id=row["deployment_id"],
        parent_task_run_id=row["parent_task_run_id"],
        parent_flow_run_id=row["parent_flow_run_id"],
        parameters=row["parameters"],
        tags=list(row["tags"]),
        idempotency_key=row["idempotency_key"],
        state=State.model_validate(row["state"]),
        state_version=row["state_version"],
        run_count=row["run_count"],
        retry_policy=RetryPolicy(retries=row["retries"], retry_delay_seconds=row["retry_delay_seconds"]),
        expected_start_time=row["expected_start_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        work_pool_name=row["work_pool_name"],
        work_queue_name=row["work_queue_name"],
        job_variables=row["job_variables"],
        worker_id=row["worker_id"],
        lease_expires_at=row["lease_expires_at"],
        created=row["created"],
        updated=row["updated"],
    )


def task_run_from_row(row: Row) -> TaskRun:
    return TaskRun.model_validate(
        {
            **{k: row[k] for k in ("id", "flow_run_id", "name", "task_key", "dynamic_key")},
            "tags": list(row["tags"]),
            "task_inputs": row["task_inputs"],
            "cache_key": row["cache_key"],
            "state": row["state"],
            "state_version": row["state_version"],
            "run_count": row["run_count"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
            "created": row["created"],
            "updated": row["updated"],
        }
    )


def log_from_row(row: Row) -> LogRecord:
    return LogRecord(
        id=row["id"],
        flow_run_id=row["flow_run_id"],
        task_run_id=row["task_run_id"],
        name=row["name"],
        level=row["level"],
        message=row["message"],
        timestamp=row["timestamp"],
    )
