"""AMQP client of the tracker: flow-run RPCs over direct reply-to, fire-and-forget batches.

    tracker = await AmqpTracker.connect("amqp://guest:guest@127.0.0.1/")
    run = await tracker.create_flow_run(FlowRunCreate(flow_name="etl"))
    verdict = await tracker.propose_state(ProposeState(flow_run_id=run.id, state=Running()))
    await tracker.send(Logs(logs=[...]))
    await tracker.close()

Messages go to the `baton.tracker` direct exchange, with routing key `tracker` for
fire-and-forget batches and `rpc` for RPCs (each has its own queue), as JSON of the
`baton_schemas.envelopes` models, on one channel with publisher confirms and `mandatory` (an
unroutable message, i.e. no tracker queue bound, is an error, not a silent drop). RPCs set
`reply_to=amq.rabbitmq.reply-to` and a `correlation_id`; the answer is an `RpcReply`.

Errors: `TransportUnavailable` (broker unreachable, unroutable, nack, timeout, tracker 5xx:
safe to retry, requests are idempotent) and `RequestRejected` (the tracker answered 4xx).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID, uuid4

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from baton_schemas.envelopes import (
    CreateFlowRun,
    Heartbeat,
    Logs,
    ProposeState,
    RpcReply,
    TaskRunStates,
)
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import TransitionResult

from ._connect import connect_robust
from ._errors import RequestRejected, TransportUnavailable

logger = logging.getLogger("baton.transport.amqp")

TRACKER_EXCHANGE = "baton.tracker"
TRACKER_ROUTING_KEY = "tracker"
# RPCs have their own queue on the same exchange (see baton_server.broker.topology)
TRACKER_RPC_ROUTING_KEY = "rpc"
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_FAILURES = (*CONNECTION_EXCEPTIONS, asyncio.TimeoutError)


class AmqpTracker:
    """One robust connection and one confirmed channel to the tracker. Satisfies `Transport`.

    Build it with `await AmqpTracker.connect(url)`; the first connect fails fast
    (`TransportUnavailable`), later connection losses are recovered by aio-pika in the
    background while calls in flight fail with `TransportUnavailable`.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        reply_queue: AbstractQueue,
        *,
        routing_key: str,
        rpc_routing_key: str,
        rpc_timeout: float,
        publish_timeout: float,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._reply_queue = reply_queue  # strong reference: the consumer lives on it
        self._routing_key = routing_key
        self._rpc_routing_key = rpc_routing_key
        self.rpc_timeout = rpc_timeout
        self.publish_timeout = publish_timeout
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        exchange: str = TRACKER_EXCHANGE,
        routing_key: str = TRACKER_ROUTING_KEY,
        rpc_routing_key: str = TRACKER_RPC_ROUTING_KEY,
        connect_timeout: float = 10.0,
        rpc_timeout: float = 10.0,
        publish_timeout: float = 10.0,
    ) -> AmqpTracker:
        try:
            connection = await connect_robust(url, name="baton-sdk", timeout=connect_timeout)
        except _FAILURES as exc:
            raise TransportUnavailable(f"cannot connect to the broker: {exc!r}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            # Passive: the tracker declares its topology; a missing exchange is a clear error.
            tracker_exchange = await channel.get_exchange(exchange, ensure=True)
            reply_queue = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
            self = cls(
                connection,
                channel,
                tracker_exchange,
                reply_queue,
                routing_key=routing_key,
                rpc_routing_key=rpc_routing_key,
                rpc_timeout=rpc_timeout,
                publish_timeout=publish_timeout,
            )
            await reply_queue.consume(self._on_reply, no_ack=True)
            connection.reconnect_callbacks.add(self._resubscribe_replies)
        except _FAILURES as exc:
            await connection.close()
            raise TransportUnavailable(f"cannot open the tracker channel ({exchange}): {exc!r}") from exc
        return self

    async def _resubscribe_replies(self, *_: Any) -> None:
        """aio-pika restores declared queues, not the direct reply-to pseudo-queue: without this,
        every RPC after a broker restart fails with "fast reply consumer does not exist"."""
        if self._closed:
            return
        try:
            self._reply_queue = await self._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
            await self._reply_queue.consume(self._on_reply, no_ack=True)
        except _FAILURES as exc:
            logger.warning("could not subscribe to RPC replies after a reconnect: %r", exc)
        for future in self._pending.values():  # replies to the old consumer are gone
            if not future.done():
                future.set_exception(TransportUnavailable("connection to the broker was lost"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportUnavailable("tracker client closed"))
        self._pending.clear()
        await self._connection.close()

    async def __aenter__(self) -> AmqpTracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the API --------------------------------------------------------------------------

    async def propose_state(
        self, proposal: ProposeState, *, timeout: float | None = None
    ) -> TransitionResult:
        reply = await self.call(proposal, timeout=timeout)
        if reply.transition is None:
            raise TransportUnavailable("tracker reply to propose_state carries no transition")
        return reply.transition

    async def create_flow_run(
        self, run: FlowRunCreate | CreateFlowRun, *, timeout: float | None = None
    ) -> FlowRun:
        request = run if isinstance(run, CreateFlowRun) else CreateFlowRun(run=run)
        reply = await self.call(request, timeout=timeout)
        if reply.flow_run is None:
            raise TransportUnavailable("tracker reply to create_flow_run carries no flow run")
        return reply.flow_run

    async def send(self, message: TaskRunStates | Logs | Heartbeat, *, timeout: float | None = None) -> None:
        """Fire and forget (persistent, confirmed by the broker, not answered by the tracker)."""
        await self._publish(
            message.to_json(),
            kind=message.kind,
            message_id=str(uuid4()),
            persistent=True,
            timeout=timeout or self.publish_timeout,
        )

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        """Extend the leases of the message's runs; return those being cancelled.

        With runs to report it asks for an answer, so a flow run started without a worker stops
        at its next task when cancelled (a worker also hears of it on `baton.control`). It goes
        on the fire-and-forget queue all the same: while the tracker is away heartbeats wait
        there, rather than expire on the RPC queue into `baton.dead`."""
        if not message.flow_run_ids:
            await self.send(message)
            return []
        reply = await self.call(message, routing_key=self._routing_key, expires=False)
        return reply.cancelling or []

    async def call(
        self,
        request: ProposeState | CreateFlowRun | Heartbeat,
        *,
        timeout: float | None = None,
        routing_key: str | None = None,
        expires: bool = True,
    ) -> RpcReply:
        """Send an RPC request and wait for its `RpcReply` (raises on an error reply). An
        unanswered request expires with `timeout` unless `expires` is False."""
        timeout = timeout or self.rpc_timeout
        correlation_id = str(uuid4())
        message_id = str(request.transition_id) if isinstance(request, ProposeState) else correlation_id
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(timeout):
                await self._publish(
                    request.to_json(),
                    kind=request.kind,
                    message_id=message_id,
                    persistent=False,
                    timeout=timeout,
                    correlation_id=correlation_id,
                    expiration=timeout if expires else None,
                    routing_key=routing_key,
                )
                body = await future
        except TimeoutError as exc:
            raise TransportUnavailable(f"no tracker reply to {request.kind} in {timeout:g}s") from exc
        finally:
            self._pending.pop(correlation_id, None)
        reply = RpcReply.model_validate_json(body)
        if not reply.ok:
            if reply.status >= 500:
                raise TransportUnavailable(f"tracker error {reply.status}: {reply.error}")
            raise RequestRejected(reply.status, reply.error or "rejected")
        return reply

    # --- internals ------------------------------------------------------------------------

    async def _publish(
        self,
        body: bytes,
        *,
        kind: str,
        message_id: str,
        persistent: bool,
        timeout: float,
        correlation_id: str | None = None,
        expiration: float | None = None,
        routing_key: str | None = None,
    ) -> None:
        if self._closed:
            raise TransportUnavailable("tracker client closed")
        extra: dict[str, Any] = {}
        if correlation_id is not None:
            extra = {"correlation_id": correlation_id, "reply_to": DIRECT_REPLY_TO}
        message = aio_pika.Message(
            body,
            content_type="application/json",
            message_id=message_id,
            type=kind,
            app_id="baton-sdk",
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            expiration=expiration,
            **extra,
        )
        try:
            await self._exchange.publish(
                message,
                routing_key=routing_key or (self._rpc_routing_key if correlation_id else self._routing_key),
                mandatory=True,
                timeout=timeout,
            )
        except _FAILURES as exc:
            raise TransportUnavailable(f"publish of {kind} failed: {exc!r}") from exc

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            logger.debug("Dropping a tracker reply nobody waits for (%s)", message.correlation_id)
            return
        future.set_result(message.body)
