"""CloudEvents onto Baton events: the documented mapping, the same for HTTP and AMQP."""

from __future__ import annotations

import uuid

import orjson
import pytest
from pydantic import ValidationError

from baton_server.events.cloudevents import (
    NotACloudEvent,
    event_id,
    from_amqp,
    from_http,
    is_amqp_cloudevent,
    is_http_cloudevent,
)

ATTRIBUTES = {"specversion": "1.0", "type": "order.created", "source": "/shop", "id": "42"}


def test_http_binary_mode() -> None:
    headers = {f"ce-{k}": v for k, v in ATTRIBUTES.items()} | {
        "ce-subject": "order/42",
        "ce-time": "2030-01-02T03:04:05Z",
        "ce-tenant": "acme",
        "content-type": "application/json",
    }
    assert is_http_cloudevent(headers)
    (event,) = from_http(headers, b'{"total": 18.5}')
    assert event.event == "order.created"
    assert event.resource["baton.resource.id"] == "/shop/order/42"
    assert event.resource["cloudevents.source"] == "/shop"
    assert event.resource["cloudevents.subject"] == "order/42"
    assert event.resource["cloudevents.tenant"] == "acme"  # an extension
    assert event.resource["cloudevents.id"] == "42"
    assert event.occurred.isoformat() == "2030-01-02T03:04:05+00:00"
    assert event.payload == {"total": 18.5}
    assert (
        event.id
        == event_id("/shop", "42")
        == uuid.uuid5(uuid.UUID("6f0d1c1e-7a53-4b8f-9a7e-0c6b0ba70001"), "/shop\n42")
    )


def test_http_structured_and_batched_modes() -> None:
    body = orjson.dumps({**ATTRIBUTES, "id": str(uuid.UUID(int=7)), "data": [1, 2]})
    (event,) = from_http({"content-type": "application/cloudevents+json"}, body)
    assert event.id == uuid.UUID(int=7)  # a UUID id is kept
    assert event.payload == {"data": [1, 2]}  # data that is not an object
    batch = orjson.dumps([ATTRIBUTES, {**ATTRIBUTES, "id": "43", "batonresourceid": "shop.order.43"}])
    first, second = from_http({"content-type": "application/cloudevents-batch+json"}, batch)
    assert first.resource["baton.resource.id"] == "/shop"
    assert second.resource["baton.resource.id"] == "shop.order.43"


def test_amqp_binary_and_structured_modes() -> None:
    headers = {f"cloudEvents:{k}": v for k, v in ATTRIBUTES.items()}
    assert is_amqp_cloudevent("application/json", headers)
    event = from_amqp("application/json", headers, b'{"total": 1}')
    assert (event.event, event.payload) == ("order.created", {"total": 1})
    underscored = {f"cloudEvents_{k}": v.encode() for k, v in ATTRIBUTES.items()}  # JMS style, bytes
    assert from_amqp("application/json", underscored, b"{}").event == "order.created"
    structured = orjson.dumps({**ATTRIBUTES, "data_base64": "AAE="})
    assert is_amqp_cloudevent("application/cloudevents+json", {})
    assert from_amqp("application/cloudevents+json", {}, structured).payload == {"data_base64": "AAE="}
    assert not is_amqp_cloudevent("application/json", {"x-other": "1"})


def test_invalid_cloudevents_are_errors_with_the_reason() -> None:
    with pytest.raises(NotACloudEvent, match="source"):
        from_http({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1"}')
    with pytest.raises(NotACloudEvent):
        from_http({"content-type": "application/cloudevents+json"}, b"\xff\xfe")
    with pytest.raises(ValidationError, match="dot-separated"):
        from_http(
            {"content-type": "application/cloudevents+json"}, orjson.dumps({**ATTRIBUTES, "type": "a b"})
        )
