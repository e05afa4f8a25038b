"""Builders for the outbox messages Baton publishes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from baton_schemas import SCHEMA_VERSION
from baton_schemas.envelopes import RunKind, StateChange, TaskRunStateReport
from baton_schemas.states import State, StateType
from baton_schemas.topology import STATES, state_routing_key

from .outbox import OutboxMessage

# A state as JSON, exactly as pydantic writes it (and StateChange embeds it), straight from the
# model's compiled serializer: its history row, its run's row and its message share the bytes.
serialise_state = State.__pydantic_serializer__.to_json


def state_change_message(change: StateChange) -> OutboxMessage:
    return OutboxMessage(
        exchange=STATES,
        routing_key=state_routing_key(change.run_kind, change.state.type, change.flow_slug),
        message_id=change.id,
        body=change.to_json(),
        mandatory=False,  # nobody need be listening for a state change
        # a flow run's changes go out in order, whichever tracker process wrote them
        ordering_key=change.run_id if change.run_kind is RunKind.FLOW_RUN else None,
    )


def flow_run_change_message(
    run: Mapping[str, Any], state: State, state_json: bytes, *, version: int, previous: State | None
) -> OutboxMessage:
    """The StateChange of a flow-run transition, serialised without building the model: the
    tracker makes one per transition. `run` is the run's row (with its flow's name and slug),
    `state_json` the state as stored in its history row; a test holds the bytes to exactly what
    StateChange produces."""
    deployment_id = run["deployment_id"]
    body = orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "id": state.id,
            "run_kind": RunKind.FLOW_RUN.value,
            "run_id": run["id"],
            "run_name": run["name"],
            "flow_run_id": run["id"],
            "flow_id": run["flow_id"],
            "flow_name": run["flow_name"],
            "flow_slug": run["flow_slug"],
            "deployment_id": deployment_id,
            "state": orjson.Fragment(state_json),
            "previous_type": None if previous is None else previous.type.value,
            "previous_name": None if previous is None else previous.name,
            "state_version": version,
            "tags": list(run["tags"]),
            "occurred": state.timestamp,
        },
        option=orjson.OPT_UTC_Z,  # datetimes exactly as pydantic's
        # asyncpg's UUID type is a uuid.UUID subclass, which orjson leaves to `default`
        default=str,
    )
    return OutboxMessage(
        STATES,
        state_routing_key(RunKind.FLOW_RUN, state.type, run["flow_slug"]),
        state.id,
        body,
        False,  # nobody need be listening for a state change
        run["id"],  # a flow run's changes go out in order, whichever tracker process wrote them
    )


class TaskRunChanges:
    """The StateChange messages of one flow run's task-run states, serialised without building
    the model: ingest makes one per reported state, tens of thousands a second. What the flow
    run gives them is worked out once; a test holds the bytes to exactly what StateChange
    produces."""

    __slots__ = ("_fields", "_routing_keys")

    def __init__(self, flow_run: Mapping[str, Any]) -> None:
        deployment_id = flow_run["deployment_id"]
        # StateChange's fields in declaration order, so the JSON matches the model's byte for
        # byte; None marks the ones each state fills in
        self._fields: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": None,
            "run_kind": RunKind.TASK_RUN.value,
            "run_id": None,
            "run_name": None,
            # asyncpg's own UUID type is not one orjson knows
            "flow_run_id": str(flow_run["id"]),
            "flow_id": str(flow_run["flow_id"]),
            "flow_name": flow_run["flow_name"],
            "flow_slug": flow_run["flow_slug"],
            "deployment_id": None if deployment_id is None else str(deployment_id),
            "state": None,
            "previous_type": None,
            "previous_name": None,
            "state_version": None,
            "tags": None,
            "occurred": None,
        }
        self._routing_keys = {
            t: state_routing_key(RunKind.TASK_RUN, t, flow_run["flow_slug"]) for t in StateType
        }

    def message(self, report: TaskRunStateReport, state_json: bytes) -> OutboxMessage:
        """`state_json` is the state as JSON, as stored in its history row."""
        state, task_run = report.state, report.task_run
        fields = self._fields.copy()
        fields["id"] = state.id
        fields["run_id"] = task_run.id
        fields["run_name"] = task_run.name
        fields["state"] = orjson.Fragment(state_json)
        fields["state_version"] = report.version
        fields["tags"] = task_run.tags
        fields["occurred"] = state.timestamp
        return OutboxMessage(
            STATES,
            self._routing_keys[state.type],
            state.id,
            orjson.dumps(fields, option=orjson.OPT_UTC_Z),  # datetimes exactly as pydantic's
            False,  # nobody need be listening for a state change
        )


__all__ = [
    "RunKind",
    "StateChange",
    "TaskRunChanges",
    "flow_run_change_message",
    "serialise_state",
    "state_change_message",
]
