"""Which events Baton takes, whichever way they came: the checks every ingest path shares.

- The name must be the AMQP routing key it was published with (over AMQP).
- Names under `baton.` are Baton's own. Over AMQP such an event is taken only from a Baton
  component: RabbitMQ refuses a publish whose `user_id` property is not its connection's user,
  so a `user_id` among the trusted users (the server's own broker user, plus
  `BATON_EVENTS_TRUSTED_USERS`) proves who sent it. Over HTTP and webhooks it is never taken.
- It must have occurred within the days the store keeps (see partitions.py).
- `received` is set on arrival; a trusted component's (the API's, which received it) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from baton._amqp import login_user
from baton_schemas.events import RESERVED_PREFIX, Event, is_reserved

from .partitions import OutsideRetention, check_occurred


class Refused(ValueError):
    """The event cannot be taken. `field` names what is wrong with it."""

    def __init__(self, reason: str, field: str = "event") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def broker_user(url: str) -> str:
    """The user an AMQP URL connects as (RabbitMQ's default when it names none; with
    auth=external the one the URL names for its certificate)."""
    return login_user(url)


def trusted_users(broker_url: str, extra: str) -> frozenset[str]:
    return frozenset({broker_user(broker_url), *(u.strip() for u in extra.split(",") if u.strip())})


@dataclass(frozen=True, slots=True)
class Admission:
    trusted: frozenset[str]
    retention_days: int

    def admit(
        self,
        event: Event,
        *,
        now: datetime,
        user_id: str | None = None,
        routing_key: str | None = None,
    ) -> Event:
        """The event as stored (with `received`), or Refused."""
        if routing_key is not None and routing_key != event.event:
            raise Refused(
                f"the routing key {routing_key!r} is not the event's name {event.event!r}: "
                "publish each event with its name as the routing key"
            )
        trusted = user_id is not None and user_id in self.trusted
        if is_reserved(event.event) and not trusted:
            who = f"user {user_id!r}" if user_id else "a publisher that set no user_id"
            raise Refused(
                f"event names under {RESERVED_PREFIX!r} are Baton's own; {event.event!r} came from {who}"
            )
        try:
            check_occurred(event.occurred, now, self.retention_days)
        except OutsideRetention as exc:
            raise Refused(str(exc), "occurred") from None
        if trusted and event.received is not None:
            return event
        event.received = now
        return event
