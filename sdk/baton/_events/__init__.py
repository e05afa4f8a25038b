"""`emit_event`: send an event to Baton from anywhere, a flow or task run included.

    from baton import emit_event
    emit_event("etl.done", resource={"baton.resource.id": "etl.daily"}, payload={"rows": 1200})

Inside a flow or task run the event is related to the run, its flow and its deployment, and
`follows` the previous event of the run: the last one it emitted, or its current state's event.
Events are buffered and sent in batches from a background thread, over AMQP (to the
`baton.events` exchange) when `BATON_BROKER_URL` is set, over HTTP (`POST /api/events`)
otherwise; while the server or broker is away they wait in a bounded buffer. At exit the process
gives them `BATON_CLOSE_TIMEOUT` seconds to go out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from baton_schemas.events import (
    RESERVED_PREFIX,
    RESOURCE_ID,
    RESOURCE_NAME,
    RESOURCE_ROLE,
    Event,
    is_reserved,
)

from .._context import flow_run_ctx, task_run_ctx
from .._settings import ClientSettings
from ._emitter import EventEmitter, make_emitter

_lock = threading.Lock()
_emitter: EventEmitter | None = None
_last: dict[UUID, UUID] = {}  # flow run id (task run id outside one) -> the last event emitted
_LAST_KEPT = 10_000


def _get_emitter() -> EventEmitter | None:
    global _emitter
    if _emitter is None:
        with _lock:
            if _emitter is None:
                _emitter = make_emitter(ClientSettings.load())
    return _emitter if _emitter is not None and _emitter.enabled else None


def set_emitter(emitter: EventEmitter | None) -> EventEmitter | None:
    """Replace the process's emitter (tests, embedders); returns the previous one."""
    global _emitter
    with _lock:
        previous, _emitter = _emitter, emitter
    return previous


def _run_related() -> tuple[list[dict[str, str]], UUID | None, UUID | None]:
    """The current run's related resources, its id, and the event a new one follows."""
    flow_ctx, task_ctx = flow_run_ctx.get(), task_run_ctx.get()
    if flow_ctx is None and task_ctx is None:
        return [], None, None
    related: list[dict[str, str]] = []
    run_id: UUID | None = None
    state_id: UUID | None = None
    if task_ctx is not None:
        task = task_ctx.task_run
        related.append(
            {RESOURCE_ID: f"baton.task-run.{task.id}", RESOURCE_ROLE: "task-run", RESOURCE_NAME: task.name}
        )
        run_id = task.id
        if flow_ctx is None:
            flow_ctx = task_ctx.flow_run_context
    if flow_ctx is not None:
        record = flow_ctx.flow_run
        related.append(
            {
                RESOURCE_ID: f"baton.flow-run.{record.id}",
                RESOURCE_ROLE: "flow-run",
                RESOURCE_NAME: record.name,
            }
        )
        if record.flow_id is not None:
            related.append(
                {
                    RESOURCE_ID: f"baton.flow.{record.flow_id}",
                    RESOURCE_ROLE: "flow",
                    RESOURCE_NAME: record.flow_name,
                }
            )
        if record.deployment_id is not None:
            related.append(
                {RESOURCE_ID: f"baton.deployment.{record.deployment_id}", RESOURCE_ROLE: "deployment"}
            )
        run_id = record.id  # one chain per flow run: its tasks' events are in it too
        # the run's state event has the state's id: a first event follows it
        state_id = record.state.id if record.state is not None else None
    return related, run_id, state_id


def emit_event(
    event: str,
    resource: Mapping[str, str] | str,
    *,
    related: Sequence[Mapping[str, str]] | None = None,
    payload: Mapping[str, Any] | None = None,
    occurred: datetime | None = None,
    id: UUID | None = None,
    follows: UUID | None = None,
) -> Event | None:
    """Emit an event; returns it, or None when no Baton server is configured (it then goes
    nowhere). `resource` is its labels, or just its `baton.resource.id`. Raises ValueError
    for an event Baton would refuse (a bad name, a missing resource id, a name under `baton.`,
    too large); never raises because the server is away."""
    if is_reserved(event):
        raise ValueError(f"event names under {RESERVED_PREFIX!r} are Baton's own: choose another name")
    labels = {RESOURCE_ID: resource} if isinstance(resource, str) else dict(resource)
    run_related, run_id, state_id = _run_related()
    given = [dict(r) for r in related or ()]
    seen = {r.get(RESOURCE_ID) for r in given}
    if follows is None and run_id is not None:
        follows = _last.get(run_id) or state_id
    fields: dict[str, Any] = {
        "event": event,
        "resource": labels,
        "related": given + [r for r in run_related if r[RESOURCE_ID] not in seen],
        "payload": dict(payload or {}),
        "follows": follows,
    }
    if occurred is not None:
        fields["occurred"] = occurred
    if id is not None:
        fields["id"] = id
    built = Event.model_validate(fields)  # ValidationError is a ValueError
    body = built.encoded()  # EventTooLarge is a ValueError
    if run_id is not None:
        if len(_last) > _LAST_KEPT:
            _last.clear()
        _last[run_id] = built.id
    emitter = _get_emitter()
    if emitter is None:
        return None
    emitter.emit(built.event, built.id, body)
    return built


def flush_events(timeout: float = 10.0) -> bool:
    """Send what is buffered now; True if nothing is left."""
    emitter = _emitter
    return True if emitter is None else emitter.flush(timeout)


__all__ = ["emit_event", "flush_events", "set_emitter"]
