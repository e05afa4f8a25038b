"""Declaring the RabbitMQ topology of `baton_schemas.topology`, idempotently, on Baton's own
client (`baton._amqp`): at every start and again after every reconnect (`Broker`)."""

from __future__ import annotations

import logging

from baton._amqp import Channel, ChannelClosed, Connection
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

log = logging.getLogger(__name__)


async def declare_topology(connection: Connection) -> None:
    """Exchanges, the tracker's queues, the dead-letter queue and the event store's queue. Safe
    to call any number of times."""
    channel = await connection.channel()
    try:
        for name, kind in EXCHANGES.items():
            await channel.declare_exchange(name, kind.value, durable=True)
        await channel.declare_queue(DEAD_QUEUE, durable=True, arguments=dead_queue_arguments())
        await channel.bind_queue(DEAD_QUEUE, DEAD)
        await channel.declare_queue(TRACKER_QUEUE, durable=True, arguments=tracker_queue_arguments())
        await channel.bind_queue(TRACKER_QUEUE, TRACKER, TRACKER_ROUTING_KEY)
        await declare_event_queues(channel)
    finally:
        await channel.close()
    await declare_tracker_rpc_queue(connection)


async def declare_tracker_rpc_queue(connection: Connection) -> None:
    """The RPC queue. A vhost set up before expired RPCs were dropped has it dead-lettering to
    `baton.dead`, and RabbitMQ refuses a declaration with other arguments (406, and closes the
    channel): that queue is deleted and declared anew. Nothing is lost: what waits in it are
    requests that their callers resend, under the same id, until they are answered."""
    channel = await connection.channel()
    try:
        try:
            await channel.declare_queue(
                TRACKER_RPC_QUEUE, durable=True, arguments=tracker_rpc_queue_arguments()
            )
        except ChannelClosed as exc:
            if exc.code != ChannelClosed.PRECONDITION_FAILED:
                raise
            log.warning("replacing %s, declared with other arguments (%s)", TRACKER_RPC_QUEUE, exc.text)
            channel = await connection.channel()
            await channel.delete_queue(TRACKER_RPC_QUEUE)
            await channel.declare_queue(
                TRACKER_RPC_QUEUE, durable=True, arguments=tracker_rpc_queue_arguments()
            )
        await channel.bind_queue(TRACKER_RPC_QUEUE, TRACKER, TRACKER_RPC_ROUTING_KEY)
    finally:
        await channel.close()


async def declare_event_queues(channel: Channel) -> None:
    """The event store's queue (the events service), bound to every event name."""
    await channel.declare_queue(EVENT_STORE_QUEUE, durable=True, arguments=event_store_queue_arguments())
    await channel.bind_queue(EVENT_STORE_QUEUE, EVENTS, EVENT_STORE_ROUTING_KEY)


async def declare_pool_queue(channel: Channel, pool: str, queue: str) -> None:
    """A work queue's RabbitMQ queue: quorum, durable, delivery limit, dead-lettered to baton.dead."""
    name = pool_queue_name(pool, queue)
    await channel.declare_queue(name, durable=True, arguments=pool_queue_arguments())
    await channel.bind_queue(name, RUNS, pool_routing_key(pool, queue))


async def delete_pool_queue(channel: Channel, pool: str, queue: str) -> None:
    await channel.delete_queue(pool_queue_name(pool, queue))


async def declare_router_queue(channel: Channel) -> None:
    """The router's queue, bound to every event name; declared by the router service, so an
    installation that runs no router does not pile events up in it."""
    await channel.declare_queue(ROUTER_QUEUE, durable=True, arguments=router_queue_arguments())
    await channel.bind_queue(ROUTER_QUEUE, EVENTS, ROUTER_ROUTING_KEY)
