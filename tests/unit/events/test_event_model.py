"""The event model's limits, each refused with an error that names it."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from baton_schemas.events import (
    MAX_EVENT_BYTES,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_RELATED,
    Event,
    EventTooLarge,
)

RID = {"baton.resource.id": "shop.order.42"}


def test_defaults_fill_id_and_occurred_and_naive_times_are_utc() -> None:
    event = Event(event="order.created", resource=RID, occurred=datetime(2030, 1, 1, 12))
    assert event.id is not None
    assert event.occurred.tzinfo is not None and event.occurred.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),  # bytes, not characters
        ("order created", "dot-separated words"),
        ("order.*", "dot-separated words"),
        ("order.#", "dot-separated words"),
        ("order..created", "dot-separated words"),
        (".order", "dot-separated words"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Event(event=name, resource=RID)


def test_a_resource_needs_its_id_and_related_resources_need_id_and_role() -> None:
    with pytest.raises(ValidationError, match=r"baton\.resource\.id"):
        Event(event="a.b", resource={"name": "x"})
    with pytest.raises(ValidationError, match=r"related\[1\] needs"):
        Event(
            event="a.b",
            resource=RID,
            related=[{"baton.resource.id": "x", "baton.resource.role": "r"}, {"baton.resource.id": "y"}],
        )


def test_counts_and_label_lengths_are_limited() -> None:
    related = [{"baton.resource.id": f"r.{i}", "baton.resource.role": "r"} for i in range(MAX_RELATED + 1)]
    with pytest.raises(ValidationError, match=f"at most {MAX_RELATED}"):
        Event(event="a.b", resource=RID, related=related)
    labels = {**RID, **{f"k{i}": "v" for i in range(MAX_LABELS)}}
    with pytest.raises(ValidationError, match=f"at most {MAX_LABELS}"):
        Event(event="a.b", resource=labels)
    with pytest.raises(ValidationError, match=f"longer than {MAX_LABEL_CHARS}"):
        Event(event="a.b", resource={"baton.resource.id": "x" * (MAX_LABEL_CHARS + 1)})


def test_an_oversized_event_is_refused_when_encoded() -> None:
    Event(event="a.b", resource=RID, payload={"blob": "x" * 1000}).encoded()
    with pytest.raises(EventTooLarge, match=f"at most {MAX_EVENT_BYTES}"):
        Event(event="a.b", resource=RID, payload={"blob": "x" * MAX_EVENT_BYTES}).encoded()


def test_unknown_fields_are_errors_not_dropped() -> None:
    with pytest.raises(ValidationError, match="payloadd"):
        Event.model_validate({"event": "a.b", "resource": RID, "payloadd": {}})
