"""Events the API takes (`POST /api/events`, webhooks) go onto `baton.events`, confirmed.

The API answers 202 only once the broker has confirmed every event, routed (`mandatory`) to
at least the event store's queue, which is durable: from then on the event is the broker's to
deliver and the store's to keep. The router sees them there too, as it sees events published
straight to RabbitMQ. Messages carry the server's `user_id`, so the store keeps their `received`.
"""

from __future__ import annotations

from collections.abc import Sequence

from baton import _tracing
from baton._tracing import TRACEPARENT
from baton_schemas.events import Event
from baton_schemas.topology import EVENTS

from ..broker.publisher import Publisher, json_properties


class NotAccepted(Exception):
    """The broker did not confirm every event; none can be called accepted."""


async def publish_events(publisher: Publisher, events: Sequence[Event], bodies: Sequence[bytes]) -> None:
    """Publish each event (its name the routing key) and wait for all the confirms."""
    traceparent = _tracing.current()  # the request's trace goes on with the events (traces on)
    headers = {TRACEPARENT: traceparent} if traceparent else None
    confirms = [
        await publisher.send(
            EVENTS, event.event, body, json_properties(message_id=event.id, headers=headers), mandatory=True
        )
        for event, body in zip(events, bodies, strict=True)
    ]
    failures = [error for error in await publisher.settle(confirms) if error is not None]
    if failures:
        raise NotAccepted(
            f"the broker did not take {len(failures)} of {len(events)} events ({failures[0]!r}); "
            "send them again: storing is idempotent on their ids"
        )
