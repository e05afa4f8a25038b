"""The event store's consumer: `baton.event-store` (bound `#` on `baton.events`) into PostgreSQL.

Each message is decoded (a Baton event as JSON, or a CloudEvent in either AMQP content mode) and
admitted (admission.py) as it arrives, then handed to the group-commit writer (writer.py); it is
acked once the statement that stores it has committed, many at once (acks.py). Storing is
idempotent on the event's id, so a redelivery after a crash between commit and ack is stored
once. A message that can never be stored (malformed
JSON, not UTF-8, not a valid event, too large, a reserved name from outside, a routing key that
is not its name) is parked in `baton.dead` with the reason in `x-baton-dead-reason`, and the
consumer goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import ValidationError

from baton._amqp import Delivery, Link
from baton_schemas import utcnow
from baton_schemas.events import MAX_EVENT_BYTES, Event
from baton_schemas.topology import EVENT_STORE_QUEUE

from ..broker.consumer import AckPolicy, DeadLetter
from ..broker.publisher import Publisher
from . import cloudevents
from .acks import WindowedConsumer
from .admission import Admission, Refused
from .partitions import Partitions
from .store import EventRow, event_row
from .writer import EventWriter, Unstorable

log = logging.getLogger(__name__)

_REASON_ERRORS = 5  # validation errors named in a dead letter's reason


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:_REASON_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "event"
        parts.append(f"{where}: {error.get('msg')}")
    more = len(exc.errors()) - _REASON_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _decode(message: Delivery) -> Event:
    """The message's event, or DeadLetter saying why there is none."""
    body = message.body
    if len(body) > MAX_EVENT_BYTES:
        raise DeadLetter(f"oversized: {len(body)} bytes; an event is at most {MAX_EVENT_BYTES}")
    content_type = message.properties.content_type
    if cloudevents.is_amqp_cloudevent(content_type, message.headers):
        try:
            return cloudevents.from_amqp(content_type, message.headers, body)
        except cloudevents.NotACloudEvent as exc:
            raise DeadLetter(str(exc)) from None
        except ValidationError as exc:
            raise DeadLetter(f"schema-invalid CloudEvent: {describe_errors(exc)}") from None
    try:
        return Event.model_validate_json(body)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise DeadLetter(f"not UTF-8: {bad}") from None
            raise DeadLetter(f"malformed JSON: {exc.errors()[0]['msg']}") from None
        raise DeadLetter(f"schema-invalid: {describe_errors(exc)}") from None


def admit_delivery_event(message: Delivery, admission: Admission) -> Event:
    """The event of a delivery, admitted (with `received`), or DeadLetter. The router takes
    events by this rule too."""
    event = _decode(message)
    try:
        return admission.admit(
            event, now=utcnow(), user_id=message.properties.user_id, routing_key=message.routing_key
        )
    except Refused as exc:
        raise DeadLetter(f"refused: {exc.reason}") from None


def admit_delivery(message: Delivery, admission: Admission) -> EventRow:
    """The row to store for a delivery, or DeadLetter."""
    event = admit_delivery_event(message, admission)
    assert event.received is not None
    return event_row(event, event.received)


class EventStoreConsumer(WindowedConsumer):
    """Not one task per message: a delivery is decoded and admitted in the callback that
    receives it, and the writer settles it (see `stored` and `failed`). Only a message to
    dead-letter or requeue gets a task of its own."""

    queue_name = EVENT_STORE_QUEUE

    def __init__(
        self,
        link: Link,
        publisher: Publisher,
        pool: asyncpg.Pool[Any],
        admission: Admission,
        *,
        prefetch: int,
        max_batch: int = 1000,
        partitions: Partitions | None = None,
    ) -> None:
        super().__init__(link, publisher, prefetch=prefetch)
        self._admission = admission
        self.writer: EventWriter[Delivery] = EventWriter(
            pool, self, max_batch=max_batch, partitions=partitions
        )

    async def handle(self, message: Delivery) -> None:  # pragma: no cover - see _on_delivery
        raise NotImplementedError("the event store consumer settles through its writer")

    def _on_delivery(self, message: Delivery) -> None:
        self._acks.received(message)
        try:
            row = admit_delivery(message, self._admission)
        except DeadLetter as dead:
            self._settle_alone(message, AckPolicy.DEAD_LETTER, dead.reason)
            return
        self.writer.submit(row, message)

    # --- Settle: what the writer says of each event ------------------------------------------

    def stored(self, tokens: Sequence[Delivery]) -> None:
        self._acks.settled(tokens, ack=True)

    def failed(self, token: Delivery, exc: BaseException) -> None:
        if isinstance(exc, Unstorable):
            self._settle_alone(token, AckPolicy.DEAD_LETTER, f"unstorable: {exc}")
        else:
            log.error("storing an event failed (%r); it will be redelivered", exc)
            self._settle_alone(token, AckPolicy.REQUEUE, repr(exc))

    async def _close_pipeline(self, timeout: float) -> None:
        await self.writer.close(timeout=timeout)
