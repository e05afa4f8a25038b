"""Events: what happened, to which resource, and what it relates to.

An event is published on the `baton.events` topic exchange with its name as the routing key (or
posted to `POST /api/events`, or made by a webhook), stored once by its id, streamed, and matched
by triggers. Every accepted flow-run transition is one too: `baton.flow-run.{StateName}`, with
the state's id as the event's id, so `follows` of each state event is the run's previous state.

Limits, each refused with an error that names it: the name is at most `MAX_NAME_BYTES` (an AMQP
routing key), a resource has at most `MAX_LABELS` labels of at most `MAX_LABEL_CHARS` characters,
an event has at most `MAX_RELATED` related resources, and its JSON is at most `MAX_EVENT_BYTES`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import Field, field_validator

from ._base import BatonModel, ClientModel, utcnow

RESOURCE_ID = "baton.resource.id"
RESOURCE_ROLE = "baton.resource.role"
RESOURCE_NAME = "baton.resource.name"
RESERVED_PREFIX = "baton."

MAX_NAME_BYTES = 255  # an AMQP routing key is a short string
MAX_EVENT_BYTES = 512 * 1024  # the event as JSON
MAX_RELATED = 100
MAX_LABELS = 100  # per resource
MAX_LABEL_CHARS = 1024  # a label's key or value (resource ids are indexed)

# words of letters, digits and `-_:/@+~`, separated by single dots; no wildcard characters
_NAME = re.compile(r"[^\s.*#]+(\.[^\s.*#]+)*")


class EventTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(f"the event is {size} bytes of JSON; at most {MAX_EVENT_BYTES} are accepted")
        self.size = size


def check_name(name: str) -> str:
    """`name` if it is a valid event name, else ValueError saying why."""
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"event name is longer than {MAX_NAME_BYTES} bytes")
    if not _NAME.fullmatch(name):
        raise ValueError(
            "event name must be dot-separated words without spaces, '*' or '#' (e.g. 'order.created')"
        )
    return name


def _check_labels(labels: dict[str, str], what: str) -> None:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{what} has {len(labels)} labels; at most {MAX_LABELS} are accepted")
    for key, value in labels.items():
        if len(key) > MAX_LABEL_CHARS or len(value) > MAX_LABEL_CHARS:
            raise ValueError(f"{what} label {key[:60]!r} is longer than {MAX_LABEL_CHARS} characters")


def is_reserved(name: str) -> bool:
    """Names under `baton.` are Baton's own: only its components may publish them."""
    return name.startswith(RESERVED_PREFIX)


class Event(ClientModel):
    """One event. `received` is set by Baton when it arrives; a sender's value is replaced."""

    schema_version: int = 1
    id: UUID = Field(default_factory=uuid4, description="Unique; storing is idempotent on it.")
    occurred: datetime = Field(default_factory=utcnow, description="When it happened (UTC if naive).")
    event: str = Field(
        min_length=1,
        description=f"Dotted name, at most {MAX_NAME_BYTES} bytes; the routing key on baton.events.",
    )
    resource: dict[str, str] = Field(description=f"Labels of what it happened to; {RESOURCE_ID!r} required.")
    related: list[dict[str, str]] = Field(
        default_factory=list,
        description=f"Other resources, each with {RESOURCE_ID!r} and {RESOURCE_ROLE!r}; "
        f"at most {MAX_RELATED}.",
    )
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: UUID | None = Field(default=None, description="An event known to have happened before.")
    received: datetime | None = Field(default=None, description="Set by Baton on arrival.")

    @field_validator("event")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("occurred", "received")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("resource")
    @classmethod
    def _has_an_id(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get(RESOURCE_ID):
            raise ValueError(f"resource needs a {RESOURCE_ID!r} label")
        _check_labels(value, "resource")
        return value

    @field_validator("related")
    @classmethod
    def _related_have_ids_and_roles(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        if len(value) > MAX_RELATED:
            raise ValueError(f"{len(value)} related resources; at most {MAX_RELATED} are accepted")
        for index, resource in enumerate(value):
            if not resource.get(RESOURCE_ID) or not resource.get(RESOURCE_ROLE):
                raise ValueError(f"related[{index}] needs {RESOURCE_ID!r} and {RESOURCE_ROLE!r} labels")
            _check_labels(resource, f"related[{index}]")
        return value

    @property
    def resource_id(self) -> str:
        return self.resource[RESOURCE_ID]

    def encoded(self) -> bytes:
        """The event as JSON; EventTooLarge past the limit."""
        body = orjson.dumps(self.model_dump(mode="json"))
        if len(body) > MAX_EVENT_BYTES:
            raise EventTooLarge(len(body))
        return body


class EventPage(BatonModel):
    """A page of `GET /api/events`, newest first; pass `next_cursor` back for the next page."""

    items: list[Event]
    next_cursor: str | None = None


class EventsAccepted(BatonModel):
    """The answer to `POST /api/events` (202): the events are durably accepted."""

    accepted: int
    ids: list[UUID]


__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_LABELS",
    "MAX_LABEL_CHARS",
    "MAX_NAME_BYTES",
    "MAX_RELATED",
    "RESERVED_PREFIX",
    "RESOURCE_ID",
    "RESOURCE_NAME",
    "RESOURCE_ROLE",
    "Event",
    "EventPage",
    "EventTooLarge",
    "EventsAccepted",
    "check_name",
    "is_reserved",
]
