"""The ack window: one multiple ack per run of settled deliveries, never past an unsettled one.

A channel that records what it is told stands in for the broker: this is the window's logic
alone; tests/integration/events and tests/chaos prove the acks against RabbitMQ."""

from __future__ import annotations

from typing import Any, cast

from baton._amqp import Channel, Delivery, Properties
from baton_server.events.acks import AckWindow


class RecordingChannel:
    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


def _deliveries(channel: Any, tags: range) -> list[Delivery]:
    return [
        Delivery(cast(Channel, channel), "c", tag, False, "baton.events", "e", Properties(), b"{}")
        for tag in tags
    ]


def test_out_of_order_batches_are_acked_once_the_oldest_is_settled() -> None:
    channel = RecordingChannel()
    window = AckWindow()
    d = _deliveries(channel, range(1, 11))
    for message in d:
        window.received(message)
    window.settled(d[5:], ack=True)  # the second batch commits first
    assert channel.acks == []
    window.settled(d[:5], ack=True)
    assert channel.acks == [(10, True)]


def test_a_delivery_settled_alone_is_covered_but_never_named() -> None:
    channel = RecordingChannel()
    window = AckWindow()
    d = _deliveries(channel, range(1, 6))
    for message in d:
        window.received(message)
    window.settled([d[0], d[1]], ack=True)
    assert channel.acks == [(2, True)]
    window.settled([d[4]], ack=False)  # dead-lettered: acked on its own already
    window.settled([d[2]], ack=True)
    assert channel.acks == [(2, True), (3, True)]  # 4 is still held: nothing past it
    window.settled([d[3]], ack=True)
    assert channel.acks == [(2, True), (3, True), (4, True)]  # 5 is not named: it is settled


def test_a_delivery_of_an_old_channel_is_acked_alone() -> None:
    old, new = RecordingChannel(), RecordingChannel()
    window = AckWindow()
    before = _deliveries(old, range(1, 3))
    for message in before:
        window.received(message)
    after = _deliveries(new, range(1, 3))  # reconnected: tags start again
    for message in after:
        window.received(message)
    window.settled([*before, *after], ack=True)
    assert old.acks == [(1, False), (2, False)]
    assert new.acks == [(2, True)]
