"""State changes as events: `baton.flow-run.{StateName}` for every accepted flow-run transition,
`baton.task-run.{StateName}` for task runs where turned on.

Built on the tracker's hot path, so serialised straight from the run's row with orjson (no
model); a test holds the result to the Event model. The event's id is the state's id: the state
and its event are one fact, and `follows` of each state event is then simply the run's previous
state. Each goes through the outbox, in the transaction that writes the state, to `baton.events`.

    resource  baton.flow-run.{id}: name, state type, state name (and message, if any)
    related   the flow, the deployment, the work pool and queue, the parent flow or task run,
              one `tag` resource per tag
    payload   {"intended": {"from", "to"}, "initial_state", "validated_state", "state_version"}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

from baton_schemas.events import MAX_LABEL_CHARS, MAX_RELATED, RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from baton_schemas.states import State
from baton_schemas.topology import EVENTS

from ..broker.outbox import OutboxMessage

FLOW_RUN = "baton.flow-run"
TASK_RUN = "baton.task-run"
_NOT_A_WORD = re.compile(r"[\s*#.]+")


@lru_cache(maxsize=256)  # a handful of names, asked for on every transition
def state_word(name: str) -> str:
    """A state's name as one word of an event name ("Awaiting Retry" -> "Awaiting-Retry")."""
    return _NOT_A_WORD.sub("-", name).strip("-") or "Unnamed"


def _resource(kind: str, key: Any, role: str, name: str | None = None) -> dict[str, str]:
    resource = {RESOURCE_ID: f"{kind}.{key}", RESOURCE_ROLE: role}
    if name is not None:
        resource[RESOURCE_NAME] = name
    return resource


def _brief(state: State | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"type": state.type.value, "name": state.name, "message": state.message}


def _state_labels(resource: dict[str, str], state: State) -> dict[str, str]:
    resource["baton.state-type"] = state.type.value
    resource["baton.state-name"] = state.name
    if state.message:
        resource["baton.state-message"] = state.message[:MAX_LABEL_CHARS]
    return resource


def _tags(related: list[dict[str, str]], tags: Iterable[str]) -> list[dict[str, str]]:
    for tag in tags:
        if len(related) >= MAX_RELATED:
            break
        if len(tag) < MAX_LABEL_CHARS - 10:
            related.append(_resource("baton.tag", tag, "tag"))
    return related


def flow_run_related(run: Mapping[str, Any]) -> list[dict[str, str]]:
    """What a flow run's events relate to, from its row (with its flow's name)."""
    related = [_resource("baton.flow", run["flow_id"], "flow", run["flow_name"])]
    if run["deployment_id"] is not None:
        related.append(_resource("baton.deployment", run["deployment_id"], "deployment"))
    pool, queue = run["work_pool_name"], run["work_queue_name"]
    if pool is not None:
        related.append(_resource("baton.work-pool", pool, "work-pool", pool))
        if queue is not None:
            related.append(_resource("baton.work-queue", f"{pool}.{queue}", "work-queue", queue))
    if run["parent_flow_run_id"] is not None:
        related.append(_resource(FLOW_RUN, run["parent_flow_run_id"], "parent-flow-run"))
    if run["parent_task_run_id"] is not None:
        related.append(_resource(TASK_RUN, run["parent_task_run_id"], "parent-task-run"))
    return _tags(related, run["tags"])


def _message(name: str, fields: dict[str, Any], event_id: UUID) -> OutboxMessage:
    body = orjson.dumps(fields, option=orjson.OPT_UTC_Z, default=str)  # asyncpg's UUID subclass
    # mandatory: the event store's queue is always bound, so a return means the topology is gone
    return OutboxMessage(EVENTS, name, event_id, body, True)


def flow_run_event(
    run: Mapping[str, Any], state: State, *, version: int, previous: State | None
) -> OutboxMessage:
    """The event of a flow-run transition (or of its first state, with no `previous`)."""
    name = f"{FLOW_RUN}.{state_word(state.name)}"
    resource = _state_labels({RESOURCE_ID: f"{FLOW_RUN}.{run['id']}", RESOURCE_NAME: run["name"]}, state)
    fields = {
        "schema_version": 1,
        "id": state.id,
        "occurred": state.timestamp,
        "event": name,
        "resource": resource,
        "related": flow_run_related(run),
        "payload": {
            "intended": {"from": None if previous is None else previous.type.value, "to": state.type.value},
            "initial_state": _brief(previous),
            "validated_state": _brief(state),
            "state_version": version,
        },
        "follows": None if previous is None else previous.id,
    }
    return _message(name, fields, state.id)


class TaskRunEvents:
    """The events of one flow run's task-run states (ingest makes them in batches); what the
    flow run gives them is worked out once."""

    __slots__ = ("_related",)

    def __init__(self, flow_run: Mapping[str, Any]) -> None:
        related = [_resource(FLOW_RUN, flow_run["id"], "flow-run")]
        related.append(_resource("baton.flow", flow_run["flow_id"], "flow", flow_run["flow_name"]))
        if flow_run["deployment_id"] is not None:
            related.append(_resource("baton.deployment", flow_run["deployment_id"], "deployment"))
        self._related = related

    def message(
        self,
        task_run_id: UUID,
        task_name: str,
        tags: list[str],
        state: State,
        *,
        version: int,
        previous: State | None,
    ) -> OutboxMessage:
        name = f"{TASK_RUN}.{state_word(state.name)}"
        resource = _state_labels({RESOURCE_ID: f"{TASK_RUN}.{task_run_id}", RESOURCE_NAME: task_name}, state)
        fields = {
            "schema_version": 1,
            "id": state.id,
            "occurred": state.timestamp,
            "event": name,
            "resource": resource,
            "related": _tags(list(self._related), tags),
            "payload": {
                "intended": {
                    "from": None if previous is None else previous.type.value,
                    "to": state.type.value,
                },
                "initial_state": _brief(previous),
                "validated_state": _brief(state),
                "state_version": version,
            },
            "follows": None if previous is None else previous.id,
        }
        return _message(name, fields, state.id)
