"""The RabbitMQ topology of DESIGN.md, declared idempotently by every service at start."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

EVENTS = "baton.events"
STATES = "baton.states"
RUNS = "baton.runs"
TRACKER = "baton.tracker"
CONTROL = "baton.control"
DEAD = "baton.dead"

TRACKER_QUEUE = "baton.tracker"
TRACKER_ROUTING_KEY = "tracker"
# RPCs (proposals, run creation) wait on their own queue: the caller retries a lost one with the
# same id, so it needs no replicated durability, and one older than any caller's timeout is
# dead-lettered rather than answered to nobody.
TRACKER_RPC_QUEUE = "baton.tracker.rpc"
TRACKER_RPC_ROUTING_KEY = "rpc"
RPC_MESSAGE_TTL_MS = 60_000
DEAD_QUEUE = "baton.dead"

EXCHANGES: dict[str, aio_pika.ExchangeType] = {
    EVENTS: aio_pika.ExchangeType.TOPIC,
    STATES: aio_pika.ExchangeType.TOPIC,
    RUNS: aio_pika.ExchangeType.DIRECT,
    TRACKER: aio_pika.ExchangeType.DIRECT,
    CONTROL: aio_pika.ExchangeType.TOPIC,
    DEAD: aio_pika.ExchangeType.FANOUT,
}

# How often the broker redelivers a message whose consumer failed before dead-lettering it.
TRACKER_DELIVERY_LIMIT = 20
POOL_DELIVERY_LIMIT = 10


def quorum_arguments(delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD,
    }


def pool_queue_name(pool: str, queue: str) -> str:
    return f"baton.pool.{pool}.{queue}"


def pool_routing_key(pool: str, queue: str) -> str:
    return f"{pool}.{queue}"


async def declare_topology(channel: AbstractChannel) -> None:
    """Exchanges, the tracker's queue and the dead-letter queue. Safe to call any number of times."""
    for name, kind in EXCHANGES.items():
        await channel.declare_exchange(name, kind, durable=True)
    dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(DEAD, routing_key="")
    tracker = await channel.declare_queue(
        TRACKER_QUEUE, durable=True, arguments=quorum_arguments(TRACKER_DELIVERY_LIMIT)
    )
    await tracker.bind(TRACKER, routing_key=TRACKER_ROUTING_KEY)
    rpc = await channel.declare_queue(
        TRACKER_RPC_QUEUE,
        durable=True,
        arguments={"x-message-ttl": RPC_MESSAGE_TTL_MS, "x-dead-letter-exchange": DEAD},
    )
    await rpc.bind(TRACKER, routing_key=TRACKER_RPC_ROUTING_KEY)
    await declare_event_queues(channel)


# --- the event store's queue (the events service) ----------------------------------------------
# Every event published on baton.events, whatever its name; quorum, so a broker restart loses
# none, with a delivery limit so a message that keeps failing is parked in baton.dead.
EVENT_STORE_QUEUE = "baton.event-store"
EVENT_STORE_DELIVERY_LIMIT = 20


async def declare_event_queues(channel: AbstractChannel) -> None:
    store = await channel.declare_queue(
        EVENT_STORE_QUEUE, durable=True, arguments=quorum_arguments(EVENT_STORE_DELIVERY_LIMIT)
    )
    await store.bind(EVENTS, routing_key="#")


async def declare_pool_queue(channel: AbstractChannel, pool: str, queue: str) -> AbstractQueue:
    """A work queue's RabbitMQ queue: quorum, durable, delivery limit, dead-lettered to baton.dead."""
    declared = await channel.declare_queue(
        pool_queue_name(pool, queue), durable=True, arguments=quorum_arguments(POOL_DELIVERY_LIMIT)
    )
    await declared.bind(RUNS, routing_key=pool_routing_key(pool, queue))
    return declared


async def delete_pool_queue(channel: AbstractChannel, pool: str, queue: str) -> None:
    await channel.queue_delete(pool_queue_name(pool, queue))
