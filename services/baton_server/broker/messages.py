"""Builders for the outbox messages Baton publishes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from baton_schemas import SCHEMA_VERSION
from baton_schemas.envelopes import RunKind, StateChange, TaskRunStateReport

from .outbox import OutboxMessage
from .topology import STATES


def state_routing_key(change: StateChange) -> str:
    return f"{change.run_kind.value}.{change.state.type.routing_word}.{change.flow_slug}"


def state_change_message(change: StateChange) -> OutboxMessage:
    return OutboxMessage(
        exchange=STATES,
        routing_key=state_routing_key(change),
        message_id=change.id,
        body=change.to_json(),
        mandatory=False,  # nobody need be listening for a state change
        # a flow run's changes go out in order, whichever tracker process wrote them
        ordering_key=change.run_id if change.run_kind is RunKind.FLOW_RUN else None,
    )


def task_run_change_message(
    report: TaskRunStateReport, state_json: bytes, flow_run: Mapping[str, Any]
) -> OutboxMessage:
    """The StateChange of a reported task-run state, serialised without building the model:
    ingest makes one per state, tens of thousands a second. `state_json` is the state as JSON,
    as stored in its history row; a test holds this to exactly what StateChange produces."""
    state = report.state
    body = orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "id": state.id,
            "run_kind": RunKind.TASK_RUN.value,
            "run_id": report.task_run.id,
            "run_name": report.task_run.name,
            # asyncpg's own UUID type is not one orjson knows
            "flow_run_id": str(flow_run["id"]),
            "flow_id": str(flow_run["flow_id"]),
            "flow_name": flow_run["flow_name"],
            "flow_slug": flow_run["flow_slug"],
            "deployment_id": None if flow_run["deployment_id"] is None else str(flow_run["deployment_id"]),
            "state": orjson.Fragment(state_json),
            "previous_type": None,
            "previous_name": None,
            "state_version": report.version,
            "tags": report.task_run.tags,
            "occurred": state.timestamp,
        },
        option=orjson.OPT_UTC_Z,  # datetimes exactly as pydantic writes them
    )
    return OutboxMessage(
        exchange=STATES,
        routing_key=f"{RunKind.TASK_RUN.value}.{state.type.routing_word}.{flow_run['flow_slug']}",
        message_id=state.id,
        body=body,
        mandatory=False,
    )


__all__ = [
    "RunKind",
    "StateChange",
    "state_change_message",
    "state_routing_key",
    "task_run_change_message",
]
