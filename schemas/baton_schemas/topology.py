"""Baton's RabbitMQ topology as data: exchange and queue names, routing keys, queue arguments.

The one place these names are written. The server declares the topology from it
(`baton_server.broker.topology`); the SDK's worker, tracker client and dead-letter tools name
the same exchanges and queues from it; the AsyncAPI document describes it. Pure: no client
library is imported here, so any side (and any outside subscriber's code) can read it.

- `baton.events` (topic, key = event name): the router, the event store, subscribers;
- `baton.states` (topic, key = `{run kind}.{state type}.{flow slug}`): subscribers;
- `baton.runs` (direct, key = `{pool}.{queue}`): one `baton.pool.{pool}.{queue}` per work queue;
- `baton.tracker` (direct, keys `tracker` and `rpc`): `baton.tracker` and `baton.tracker.rpc`;
- `baton.control` (topic, keys `worker.{id}` and `flow-run.{id}`): each worker's own queue;
- `baton.dead` (fanout): `baton.dead`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:  # this module imports nothing but the standard library
    from .envelopes import RunKind
    from .states import StateType


class ExchangeType(StrEnum):
    """AMQP exchange types, spelt as `exchange.declare` wants them."""

    DIRECT = "direct"
    TOPIC = "topic"
    FANOUT = "fanout"


# --- exchanges ------------------------------------------------------------------------------

EVENTS = "baton.events"
STATES = "baton.states"
RUNS = "baton.runs"
TRACKER = "baton.tracker"
CONTROL = "baton.control"
DEAD = "baton.dead"

EXCHANGES: dict[str, ExchangeType] = {
    EVENTS: ExchangeType.TOPIC,
    STATES: ExchangeType.TOPIC,
    RUNS: ExchangeType.DIRECT,
    TRACKER: ExchangeType.DIRECT,
    CONTROL: ExchangeType.TOPIC,
    DEAD: ExchangeType.FANOUT,
}

# --- the tracker's queues -------------------------------------------------------------------

TRACKER_QUEUE = "baton.tracker"
TRACKER_ROUTING_KEY = "tracker"
# RPCs (proposals that are not final, run creation) wait on their own queue: the caller resends
# an unanswered one with the same id until it has an answer, so it needs no replicated
# durability. One older than its caller's timeout (its `expiration`) or than any caller's (the
# queue's TTL) is dropped, not dead-lettered: nobody waits for it, and its resent copy carries
# it on. Parking it would fill `baton.dead` with requests nobody must replay during any outage.
# Final states never come here: they wait on the durable `baton.tracker` queue.
TRACKER_RPC_QUEUE = "baton.tracker.rpc"
TRACKER_RPC_ROUTING_KEY = "rpc"
RPC_MESSAGE_TTL_MS = 60_000
# RabbitMQ's pseudo-queue for RPC replies ("direct reply-to"): no queue to declare per caller.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

DEAD_QUEUE = "baton.dead"
# The vhost's stamp: an empty queue whose arguments carry the installation id of the Baton that
# owns the vhost (`installation_queue_arguments`). RabbitMQ compares the dead-letter arguments of
# a re-declaration with the queue's own and refuses a different one (406 PRECONDITION_FAILED),
# so a second installation cannot declare it; a custom `x-` argument would not be compared.
INSTALLATION_QUEUE = "baton.installation"
# Every event published on baton.events, whatever its name, for the events service to store.
EVENT_STORE_QUEUE = "baton.event-store"
EVENT_STORE_ROUTING_KEY = "#"
# Every event too, for the router (declared by the router when it starts), shared by its replicas.
ROUTER_QUEUE = "baton.router"
ROUTER_ROUTING_KEY = "#"
ROUTER_DELIVERY_LIMIT = 20

# How often the broker redelivers a message whose consumer failed before dead-lettering it.
TRACKER_DELIVERY_LIMIT = 20
POOL_DELIVERY_LIMIT = 10
EVENT_STORE_DELIVERY_LIMIT = 20


# --- queue arguments ------------------------------------------------------------------------


def quorum_arguments(delivery_limit: int) -> dict[str, Any]:
    """A replicated queue whose poison messages go to `baton.dead` after `delivery_limit` tries."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD,
    }


def dead_queue_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


def tracker_queue_arguments() -> dict[str, Any]:
    return quorum_arguments(TRACKER_DELIVERY_LIMIT)


def tracker_rpc_queue_arguments() -> dict[str, Any]:
    """A message TTL and no dead-letter exchange: an expired request is dropped."""
    return {"x-message-ttl": RPC_MESSAGE_TTL_MS}


def pool_queue_arguments() -> dict[str, Any]:
    return quorum_arguments(POOL_DELIVERY_LIMIT)


def router_queue_arguments() -> dict[str, Any]:
    """Quorum, so a broker restart loses no event; a message that keeps failing is parked."""
    return quorum_arguments(ROUTER_DELIVERY_LIMIT)


def event_store_queue_arguments() -> dict[str, Any]:
    """Quorum, so a broker restart loses no event; a message that keeps failing is parked."""
    return quorum_arguments(EVENT_STORE_DELIVERY_LIMIT)


def installation_queue_arguments(installation_id: UUID | str) -> dict[str, Any]:
    """The marker queue's arguments: quorum (it must survive any one node), the id as the
    dead-letter routing key (nothing is ever published to it)."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD,
        "x-dead-letter-routing-key": str(installation_id),
    }


# --- names and routing keys built from ids --------------------------------------------------


def pool_queue_name(pool: str, queue: str) -> str:
    """The RabbitMQ queue of a work queue: bound to `baton.runs` with `pool_routing_key`."""
    return f"baton.pool.{pool}.{queue}"


def pool_routing_key(pool: str, queue: str) -> str:
    return f"{pool}.{queue}"


def worker_control_queue(worker_id: str) -> str:
    """A worker's own auto-delete queue on `baton.control`."""
    return f"baton.worker.{worker_id}"


def worker_control_key(worker_id: str) -> str:
    """Control messages for a worker as a whole."""
    return f"worker.{worker_id}"


def flow_run_control_key(flow_run_id: UUID | str) -> str:
    """Control messages (cancel, pause) for one flow run, to whoever runs it."""
    return f"flow-run.{flow_run_id}"


def state_routing_key(run_kind: RunKind, state_type: StateType, flow_slug: str) -> str:
    """The key of a state change on `baton.states`, e.g. `flow-run.failed.etl-daily`."""
    return f"{run_kind.value}.{state_type.routing_word}.{flow_slug}"


__all__ = [
    "CONTROL",
    "DEAD",
    "DEAD_QUEUE",
    "DIRECT_REPLY_TO",
    "EVENTS",
    "EVENT_STORE_DELIVERY_LIMIT",
    "EVENT_STORE_QUEUE",
    "EVENT_STORE_ROUTING_KEY",
    "EXCHANGES",
    "INSTALLATION_QUEUE",
    "POOL_DELIVERY_LIMIT",
    "ROUTER_DELIVERY_LIMIT",
    "ROUTER_QUEUE",
    "ROUTER_ROUTING_KEY",
    "RPC_MESSAGE_TTL_MS",
    "RUNS",
    "STATES",
    "TRACKER",
    "TRACKER_DELIVERY_LIMIT",
    "TRACKER_QUEUE",
    "TRACKER_ROUTING_KEY",
    "TRACKER_RPC_QUEUE",
    "TRACKER_RPC_ROUTING_KEY",
    "ExchangeType",
    "dead_queue_arguments",
    "event_store_queue_arguments",
    "flow_run_control_key",
    "installation_queue_arguments",
    "pool_queue_arguments",
    "pool_queue_name",
    "pool_routing_key",
    "quorum_arguments",
    "router_queue_arguments",
    "state_routing_key",
    "tracker_queue_arguments",
    "tracker_rpc_queue_arguments",
    "worker_control_key",
    "worker_control_queue",
]
