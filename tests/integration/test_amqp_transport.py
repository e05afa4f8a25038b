"""The AMQP transport's wire contract, against the machine's RabbitMQ (this run's own vhost),
with a stand-in tracker answering RPCs on a private exchange (the HTTP transport's is
tests/unit/sdk/test_http_transport.py, against httpx's mock transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from baton._transport import RequestRejected, TransportUnavailable
from baton_schemas.envelopes import (
    CreateFlowRun,
    Heartbeat,
    Logs,
    ProposeState,
    RpcReply,
    TaskRunStateReport,
    TaskRunStates,
    TrackerMessage,
)
from baton_schemas.logs import LogRecord
from baton_schemas.runs import FlowRunCreate, TaskRunInfo
from baton_schemas.states import Completed, Running, TransitionResult, Verdict

from ..support.backends import Backends
from ..support.models import a_flow_run
from ..support.waiting import eventually

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def broker_url(backends: Backends) -> str:
    """This test run's own vhost on the real RabbitMQ."""
    return backends.broker_url


@pytest.fixture
async def tracker_exchange(broker_url: str) -> AsyncIterator[tuple[str, list[Any]]]:
    """A private exchange with a stand-in tracker: records requests, accepts proposals."""
    import aio_pika
    from pydantic import TypeAdapter

    connection = await aio_pika.connect(broker_url, timeout=3)
    adapter: TypeAdapter[Any] = TypeAdapter(TrackerMessage)
    received: list[Any] = []
    channel = await connection.channel()
    name = f"baton.tracker.test-{uuid4().hex[:8]}"
    exchange = await channel.declare_exchange(name, "direct", auto_delete=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "tracker")
    await queue.bind(exchange, "rpc")

    async def answer(message: Any) -> None:
        async with message.process():
            request = adapter.validate_json(message.body)
            received.append((request, message))
            if not message.reply_to:
                return
            if isinstance(request, ProposeState):
                if request.state.is_completed():
                    reply = RpcReply(ok=False, status=404, error="unknown flow run")
                else:
                    reply = RpcReply(
                        ok=True, transition=TransitionResult(verdict=Verdict.ACCEPT, state=request.state)
                    )
            else:
                assert isinstance(request, CreateFlowRun)
                reply = RpcReply(ok=True, flow_run=a_flow_run(request.run.id))
            await channel.default_exchange.publish(
                aio_pika.Message(reply.to_json(), correlation_id=message.correlation_id),
                routing_key=message.reply_to,
            )

    await queue.consume(answer)
    try:
        yield name, received
    finally:
        await connection.close()


async def test_amqp_tracker_rpc_and_fire_and_forget(
    tracker_exchange: tuple[str, list[Any]], broker_url: str
) -> None:
    from baton._transport.amqp import AmqpTracker

    name, received = tracker_exchange
    tracker = await AmqpTracker.connect(broker_url, exchange=name, rpc_timeout=5)
    try:
        run_id = uuid4()
        run = await tracker.create_flow_run(FlowRunCreate(id=run_id, flow_name="etl"))
        assert run.id == run_id
        proposal = ProposeState(flow_run_id=run_id, state=Running())
        result = await tracker.propose_state(proposal)
        assert result.verdict is Verdict.ACCEPT
        with pytest.raises(RequestRejected) as rejected:
            await tracker.propose_state(ProposeState(flow_run_id=run_id, state=Completed()))
        assert rejected.value.status == 404
        await tracker.send(Logs(logs=[LogRecord(message="shipped")]))

        async def all_received() -> bool:
            return len(received) >= 4

        await eventually(all_received, timeout=5, what="the stand-in tracker to receive 4 messages")
        kinds = [request.kind for request, _ in received]
        assert kinds == ["create_flow_run", "propose_state", "propose_state", "logs"]
        _, rpc_message = received[1]
        assert rpc_message.reply_to.startswith("amq.rabbitmq.reply-to")
        assert rpc_message.content_type == "application/json"
        assert rpc_message.message_id == str(proposal.transition_id)
        _, logs_message = received[3]
        assert logs_message.delivery_mode == 2  # persistent
        assert logs_message.message_id
        assert not any("traceparent" in (message.headers or {}) for _, message in received)
    finally:
        await tracker.close()


async def test_amqp_state_reports_carry_the_traceparent_they_are_given(
    tracker_exchange: tuple[str, list[Any]], broker_url: str
) -> None:
    from baton._transport.amqp import AmqpTracker

    name, received = tracker_exchange
    tracker = await AmqpTracker.connect(broker_url, exchange=name, rpc_timeout=5)
    try:
        run_id = uuid4()
        await tracker.propose_state(
            ProposeState(flow_run_id=run_id, state=Running()), traceparent=TRACEPARENT
        )
        info = TaskRunInfo(id=uuid4(), flow_run_id=run_id, name="t-0", task_key="t")
        states = TaskRunStates(reports=[TaskRunStateReport(task_run=info, state=Completed(), version=1)])
        await tracker.send(states, traceparent=TRACEPARENT)
        await tracker.send(Logs(logs=[LogRecord(message="untraced")]))

        async def all_received() -> bool:
            return len(received) >= 3

        await eventually(all_received, timeout=5, what="the stand-in tracker to receive 3 messages")
        headers = [
            (request.kind, (message.headers or {}).get("traceparent")) for request, message in received
        ]
        assert headers == [
            ("propose_state", TRACEPARENT),
            ("task_run_states", TRACEPARENT),
            ("logs", None),
        ]
    finally:
        await tracker.close()


async def test_amqp_rpc_timeout_is_unavailable(
    tracker_exchange: tuple[str, list[Any]], broker_url: str
) -> None:
    import aio_pika

    from baton._transport.amqp import AmqpTracker

    # an exchange with a queue nobody answers from
    connection = await aio_pika.connect(broker_url)
    channel = await connection.channel()
    name = f"baton.tracker.silent-{uuid4().hex[:8]}"
    exchange = await channel.declare_exchange(name, "direct", auto_delete=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "rpc")
    tracker = await AmqpTracker.connect(broker_url, exchange=name, rpc_timeout=0.2)
    try:
        with pytest.raises(TransportUnavailable, match="no tracker reply"):
            await tracker.propose_state(ProposeState(flow_run_id=uuid4(), state=Running()))
    finally:
        await tracker.close()
        await connection.close()


async def test_amqp_unroutable_and_missing_exchange_are_unavailable(
    tracker_exchange: tuple[str, list[Any]], broker_url: str
) -> None:
    from baton._transport.amqp import AmqpTracker

    with pytest.raises(TransportUnavailable, match="exchange"):
        await AmqpTracker.connect(broker_url, exchange=f"missing-{uuid4().hex}")
    name, _ = tracker_exchange
    tracker = await AmqpTracker.connect(broker_url, exchange=name, routing_key="nobody")
    try:
        with pytest.raises(TransportUnavailable):
            await tracker.send(Heartbeat())
    finally:
        await tracker.close()
    with pytest.raises(TransportUnavailable):
        await AmqpTracker.connect("amqp://guest:guest@127.0.0.1:9/", connect_timeout=1)
