"""emit-event: an event rendered from the firing, through the outbox in the firing's
transaction (so it goes out once the firing committed, and only then)."""

from __future__ import annotations

from pydantic import ValidationError

from baton_schemas.automations import ActionOutcome, EmitEvent
from baton_schemas.events import RESOURCE_ID, Event, EventTooLarge
from baton_schemas.topology import EVENTS

from ...broker.outbox import Outbox, OutboxMessage
from ...db.types import Connection
from ...events.templates import TemplateError
from ..templating import render_value
from ._base import ActionContext, ActionFailed, Done


async def emit_event(conn: Connection, firing: ActionContext, index: int, action: EmitEvent) -> Done:
    try:
        name = await render_value(action.event, firing.context, firing.limits)
        resource = await render_value(action.resource, firing.context, firing.limits)
        payload = await render_value(action.payload, firing.context, firing.limits)
    except TemplateError as exc:
        raise ActionFailed(str(exc)) from None
    resource = {str(k): str(v) for k, v in resource.items()}
    resource.setdefault(RESOURCE_ID, f"baton.automation.{firing.automation.id}")
    try:
        event = Event(event=str(name), resource=resource, payload=payload, occurred=firing.now)
        event.received = firing.now
        body = event.encoded()
    except (ValidationError, EventTooLarge) as exc:
        raise ActionFailed(f"the event is not valid: {exc}") from None
    rows = await Outbox.add(conn, [OutboxMessage(EVENTS, event.event, event.id, body, True)])
    outcome = ActionOutcome(
        index=index, type=action.type, ok=True, detail=f"event {event.event} ({event.id})"
    )
    return Done(outcome, rows)
