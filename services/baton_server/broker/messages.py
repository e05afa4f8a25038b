"""Builders for the outbox messages Baton publishes."""

from __future__ import annotations

from baton_schemas.envelopes import RunKind, StateChange

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
    )


__all__ = ["RunKind", "StateChange", "state_change_message", "state_routing_key"]
