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
from uuid import UUID, uuid4

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
from baton_schemas.topology import DIRECT_REPLY_TO, TRACKER, TRACKER_ROUTING_KEY, TRACKER_RPC_ROUTING_KEY

from .._amqp import PERSISTENT, TRANSIENT, AmqpError, Channel, Connection, Delivery, Link, Properties
from .._tracing import TRACEPARENT
from ._errors import RequestRejected, TransportUnavailable
from ._installation import stamp_vhost

logger = logging.getLogger("baton.transport.amqp")

_FAILURES = (AmqpError, OSError, TimeoutError)


class AmqpTracker:
    """One self-reconnecting connection (`baton._amqp.Link`) and one confirmed channel to the
    tracker. Satisfies `Transport`.

    Build it with `await AmqpTracker.connect(url)`; the first connect fails fast
    (`TransportUnavailable`). Later connection losses are recovered in the background: calls in
    flight fail with `TransportUnavailable`, and calls made meanwhile wait for the connection up
    to their timeout.
    """

    def __init__(
        self,
        link: Link,
        *,
        exchange: str,
        routing_key: str,
        rpc_routing_key: str,
        rpc_timeout: float,
        publish_timeout: float,
    ) -> None:
        self._link = link
        self._exchange = exchange
        self._routing_key = routing_key
        self._rpc_routing_key = rpc_routing_key
        self.rpc_timeout = rpc_timeout
        self.publish_timeout = publish_timeout
        self._channel: Channel | None = None
        self._opening = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        exchange: str = TRACKER,
        routing_key: str = TRACKER_ROUTING_KEY,
        rpc_routing_key: str = TRACKER_RPC_ROUTING_KEY,
        connect_timeout: float = 10.0,
        rpc_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        name: str = "baton-sdk",
    ) -> AmqpTracker:
        """`name` names the connection on the broker (its `connection_name`)."""
        link = Link(url, name=name)
        try:
            await link.connect(timeout=connect_timeout)
        except (*_FAILURES, ValueError) as exc:
            raise TransportUnavailable(f"cannot connect to the broker: {exc!r}") from exc
        self = cls(
            link,
            exchange=exchange,
            routing_key=routing_key,
            rpc_routing_key=rpc_routing_key,
            rpc_timeout=rpc_timeout,
            publish_timeout=publish_timeout,
        )
        try:
            # passive: the tracker declares its topology; a missing exchange is a clear error
            checking = await link.connection.channel()
            await checking.check_exchange(exchange)
            await checking.close()
            await self._open(link.connection)
        except _FAILURES as exc:
            await link.close()
            raise TransportUnavailable(f"cannot open the tracker channel ({exchange}): {exc!r}") from exc
        link.on_reconnect(self._reopen)
        return self

    async def _open(self, connection: Connection) -> Channel:
        """A confirmed channel that also receives the RPC replies (direct reply-to answers on
        the channel that published the request)."""
        channel = await connection.channel(confirms=True)
        await channel.consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True, on_cancel=self._replies_lost)
        self._channel = channel
        return channel

    @property
    def link(self) -> Link:
        """The connection this client rides on; a process's other AMQP work (a worker's queues
        and control messages) rides on it too, so that the process has one stack."""
        return self._link

    def _replies_lost(self, _tag: str) -> None:
        """The channel closed (or the connection): replies to its requests will never come."""
        self._fail_pending(TransportUnavailable("connection to the broker was lost"))

    async def _reopen(self, connection: Connection) -> None:
        if not self._closed:
            async with self._opening:
                await self._open(connection)

    async def _ready(self, timeout: float) -> Channel:
        channel = self._channel
        if channel is not None and channel.is_open:
            return channel
        await asyncio.wait_for(self._link.up.wait(), timeout)
        async with self._opening:
            if self._channel is None or not self._channel.is_open:
                await self._open(self._link.connection)
            assert self._channel is not None
            return self._channel

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail_pending(TransportUnavailable("tracker client closed"))
        self._pending.clear()
        await self._link.close()

    async def check_installation(self, installation_id: UUID, *, what: str) -> None:
        """Raise `OtherInstallation` if the vhost belongs to another Baton than `what` (the
        API this process was given) says it is; stamp it if nothing has yet."""
        try:
            await stamp_vhost(self._link.connection, installation_id, what=what)
        except _FAILURES as exc:
            raise TransportUnavailable(f"cannot check the broker's installation: {exc!r}") from exc

    async def __aenter__(self) -> AmqpTracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the API --------------------------------------------------------------------------

    async def propose_state(
        self, proposal: ProposeState, *, timeout: float | None = None, traceparent: str | None = None
    ) -> TransitionResult:
        """`traceparent`: the proposer's span, for the tracker's span of the transition."""
        if proposal.state.is_terminal:
            # a final state waits for the tracker on the durable queue, however long it is away:
            # sent again (same transition id) until answered, and applied once whatever happens
            reply = await self.call(
                proposal,
                timeout=timeout,
                routing_key=self._routing_key,
                expires=False,
                persistent=True,
                traceparent=traceparent,
            )
        else:
            reply = await self.call(proposal, timeout=timeout, traceparent=traceparent)
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

    async def send(
        self,
        message: TaskRunStates | Logs | Heartbeat,
        *,
        timeout: float | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Fire and forget (persistent, confirmed by the broker, not answered by the tracker)."""
        await self._publish(
            message.to_json(),
            kind=message.kind,
            message_id=str(uuid4()),
            persistent=True,
            timeout=timeout or self.publish_timeout,
            traceparent=traceparent,
        )

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        """Extend the leases of the message's runs; return those being cancelled.

        With runs to report it asks for an answer, so a flow run started without a worker stops
        at its next task when cancelled (a worker also hears of it on `baton.control`). It goes
        on the fire-and-forget queue all the same: while the tracker is away heartbeats wait
        there and are applied once it is back, rather than expire unapplied on the RPC queue."""
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
        persistent: bool = False,
        traceparent: str | None = None,
    ) -> RpcReply:
        """Send an RPC request and wait for its `RpcReply` (raises on an error reply). An
        unanswered request expires with `timeout` unless `expires` is False; a `persistent`
        one survives a broker restart on a durable queue."""
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
                    persistent=persistent,
                    timeout=timeout,
                    correlation_id=correlation_id,
                    expiration=timeout if expires else None,
                    routing_key=routing_key,
                    traceparent=traceparent,
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
        traceparent: str | None = None,
    ) -> None:
        if self._closed:
            raise TransportUnavailable("tracker client closed")
        properties = Properties(
            content_type="application/json",
            message_id=message_id,
            type=kind,
            app_id="baton-sdk",
            delivery_mode=PERSISTENT if persistent else TRANSIENT,
            expiration=None if expiration is None else str(max(1, int(expiration * 1000))),
        )
        if correlation_id is not None:
            properties.correlation_id = correlation_id
            properties.reply_to = DIRECT_REPLY_TO
        if traceparent is not None:
            properties.headers = {TRACEPARENT: traceparent}
        try:
            async with asyncio.timeout(timeout):
                channel = await self._ready(timeout)
                await channel.writable()  # a full socket or a blocked broker: wait, do not pile up
                confirm = channel.publish(
                    self._exchange,
                    routing_key or (self._rpc_routing_key if correlation_id else self._routing_key),
                    body,
                    properties,
                    mandatory=True,
                )
                assert confirm is not None  # a confirm-mode channel
                await confirm
        except _FAILURES as exc:
            raise TransportUnavailable(f"publish of {kind} failed: {exc!r}") from exc

    def _on_reply(self, message: Delivery) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            logger.debug("Dropping a tracker reply nobody waits for (%s)", message.correlation_id)
            return
        future.set_result(message.body)
