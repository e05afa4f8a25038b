"""Declaring the RabbitMQ topology of `baton_schemas.topology`, idempotently, at every start."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from baton_schemas.topology import (
    DEAD,
    DEAD_QUEUE,
    EVENT_STORE_QUEUE,
    EVENT_STORE_ROUTING_KEY,
    EVENTS,
    EXCHANGES,
    ROUTER_QUEUE,
    ROUTER_ROUTING_KEY,
    RUNS,
    TRACKER,
    TRACKER_QUEUE,
    TRACKER_ROUTING_KEY,
    TRACKER_RPC_QUEUE,
    TRACKER_RPC_ROUTING_KEY,
    dead_queue_arguments,
    event_store_queue_arguments,
    pool_queue_arguments,
    pool_queue_name,
    pool_routing_key,
    router_queue_arguments,
    tracker_queue_arguments,
    tracker_rpc_queue_arguments,
)


async def declare_topology(channel: AbstractChannel) -> None:
    """Exchanges, the tracker's queue and the dead-letter queue. Safe to call any number of times."""
    for name, kind in EXCHANGES.items():
        await channel.declare_exchange(name, aio_pika.ExchangeType(kind), durable=True)
    dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments=dead_queue_arguments())
    await dead.bind(DEAD, routing_key="")
    tracker = await channel.declare_queue(TRACKER_QUEUE, durable=True, arguments=tracker_queue_arguments())
    await tracker.bind(TRACKER, routing_key=TRACKER_ROUTING_KEY)
    rpc = await channel.declare_queue(
        TRACKER_RPC_QUEUE, durable=True, arguments=tracker_rpc_queue_arguments()
    )
    await rpc.bind(TRACKER, routing_key=TRACKER_RPC_ROUTING_KEY)
    await declare_event_queues(channel)


async def declare_event_queues(channel: AbstractChannel) -> None:
    """The event store's queue (the events service), bound to every event name."""
    store = await channel.declare_queue(
        EVENT_STORE_QUEUE, durable=True, arguments=event_store_queue_arguments()
    )
    await store.bind(EVENTS, routing_key=EVENT_STORE_ROUTING_KEY)


async def declare_pool_queue(channel: AbstractChannel, pool: str, queue: str) -> AbstractQueue:
    """A work queue's RabbitMQ queue: quorum, durable, delivery limit, dead-lettered to baton.dead."""
    declared = await channel.declare_queue(
        pool_queue_name(pool, queue), durable=True, arguments=pool_queue_arguments()
    )
    await declared.bind(RUNS, routing_key=pool_routing_key(pool, queue))
    return declared


async def delete_pool_queue(channel: AbstractChannel, pool: str, queue: str) -> None:
    await channel.queue_delete(pool_queue_name(pool, queue))


async def declare_router_queue(channel: AbstractChannel) -> None:
    """The router's queue, bound to every event name; declared by the router service, so an
    installation that runs no router does not pile events up in it."""
    queue = await channel.declare_queue(ROUTER_QUEUE, durable=True, arguments=router_queue_arguments())
    await queue.bind(EVENTS, routing_key=ROUTER_ROUTING_KEY)
