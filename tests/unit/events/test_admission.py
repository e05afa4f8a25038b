"""What every ingest path refuses: a routing key that is not the name, reserved names from
outside, and events the store has no day for."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton_schemas import utcnow
from baton_schemas.events import Event
from baton_server.events.admission import Admission, Refused, broker_user, trusted_users

ADMISSION = Admission(trusted_users("amqp://baton-server:pw@mq:5672/baton", "baton-worker, "), 7)


def _event(name: str = "order.created", **fields: object) -> Event:
    return Event.model_validate({"event": name, "resource": {"baton.resource.id": "x"}, **fields})


def test_trusted_users_are_the_servers_own_and_the_configured_ones() -> None:
    assert ADMISSION.trusted == {"baton-server", "baton-worker"}
    assert broker_user("amqp://mq/") == "guest"
    assert broker_user("amqp://a%40b:pw@mq/") == "a@b"


def test_the_routing_key_must_be_the_name() -> None:
    with pytest.raises(Refused, match=r"routing key 'order\.paid' is not the event's name"):
        ADMISSION.admit(_event(), now=utcnow(), routing_key="order.paid")


def test_reserved_names_only_from_baton_users() -> None:
    now = utcnow()
    with pytest.raises(Refused, match="set no user_id"):
        ADMISSION.admit(_event("baton.flow-run.Failed"), now=now)
    with pytest.raises(Refused, match="user 'outsider'"):
        ADMISSION.admit(_event("baton.flow-run.Failed"), now=now, user_id="outsider")
    assert ADMISSION.admit(_event("baton.flow-run.Failed"), now=now, user_id="baton-server").received == now


def test_received_is_set_on_arrival_unless_a_baton_component_received_it() -> None:
    now, earlier = utcnow(), utcnow() - timedelta(seconds=5)
    assert ADMISSION.admit(_event(received=earlier), now=now, user_id="someone").received == now
    assert ADMISSION.admit(_event(received=earlier), now=now, user_id="baton-server").received == earlier


def test_events_outside_the_stored_days_are_refused() -> None:
    now = utcnow()
    ADMISSION.admit(_event(occurred=now - timedelta(days=6)), now=now)
    with pytest.raises(Refused, match="older than the 7 days") as old:
        ADMISSION.admit(_event(occurred=now - timedelta(days=9)), now=now)
    assert old.value.field == "occurred"
    with pytest.raises(Refused, match="ahead"):
        ADMISSION.admit(_event(occurred=now + timedelta(days=3)), now=now)
