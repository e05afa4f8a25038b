"""The transports' wire contract: HTTP requests (against httpx's mock transport) and AMQP
messages (against the machine's RabbitMQ, with a stand-in tracker answering RPCs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest

from baton._transport import RequestRejected, TransportUnavailable
from baton._transport.http import BatonClient, SyncBatonClient
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
from baton_schemas.runs import FlowRun, FlowRunCreate, TaskRunInfo
from baton_schemas.states import Completed, Pending, Running, TransitionResult, Verdict

from ...support.backends import Backends

API = "http://baton.test/api"


def _flow_run(run_id: Any = None) -> FlowRun:
    now = datetime.now(UTC)
    return FlowRun(
        id=run_id or uuid4(),
        name="quiet-otter",
        flow_id=uuid4(),
        flow_name="etl",
        state=Pending(),
        state_version=1,
        created=now,
        updated=now,
    )


class FakeApi:
    """Answers like the API contract and records the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status is not None:
            return httpx.Response(self.status, json={"detail": "nope"})
        path = request.url.path
        if path == "/api/flow_runs" and request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(201, content=_flow_run(body["id"]).to_json())
        if path.endswith("/set_state"):
            body = json.loads(request.content)
            result = TransitionResult(verdict=Verdict.ACCEPT, state=Running(), state_version=2)
            assert body["force"] is False and body["transition_id"]
            return httpx.Response(200, content=result.to_json())
        if path in ("/api/task_runs/states", "/api/logs", "/api/flow_runs/heartbeat"):
            return httpx.Response(202)
        if path == "/api/flow_runs" and request.method == "GET":
            page = {"items": [_flow_run().model_dump(mode="json")], "next_cursor": "c2"}
            return httpx.Response(200, json=page)
        if path == "/api/logs/stream":
            record = LogRecord(message="streamed").model_dump_json()
            body = f"data: {record}\n\ndata: {record}\n\nevent: end\ndata: {{}}\n\n"
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(404, json={"detail": f"no route {path}"})


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[BatonClient]:
    async with BatonClient(API, api_key="secret", transport=httpx.MockTransport(api)) as c:
        yield c


async def test_http_writes_follow_the_contract(client: BatonClient, api: FakeApi) -> None:
    run_id = uuid4()
    run = await client.create_flow_run(FlowRunCreate(id=run_id, flow_name="etl"))
    assert run.id == run_id
    proposal = ProposeState(flow_run_id=run_id, state=Running())
    result = await client.propose_state(proposal)
    assert result.verdict is Verdict.ACCEPT
    info = TaskRunInfo(id=uuid4(), flow_run_id=run_id, name="t-0", task_key="t")
    await client.send(
        TaskRunStates(reports=[TaskRunStateReport(task_run=info, state=Completed(), version=1)])
    )
    await client.send(Logs(logs=[LogRecord(message="x")]))
    await client.send(Heartbeat(flow_run_ids=[run_id]))
    paths = [(r.method, r.url.path) for r in api.requests]
    assert paths == [
        ("POST", "/api/flow_runs"),
        ("POST", f"/api/flow_runs/{run_id}/set_state"),
        ("POST", "/api/task_runs/states"),
        ("POST", "/api/logs"),
        ("POST", "/api/flow_runs/heartbeat"),
    ]
    assert all(r.headers["authorization"] == "Bearer secret" for r in api.requests)
    assert not any("traceparent" in r.headers for r in api.requests)  # none given: none sent
    set_state = json.loads(api.requests[1].content)
    assert set_state["transition_id"] == str(proposal.transition_id)
    assert set_state["state"]["type"] == "RUNNING"


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_http_state_reports_carry_the_traceparent_they_are_given(
    client: BatonClient, api: FakeApi
) -> None:
    run_id = uuid4()
    await client.propose_state(ProposeState(flow_run_id=run_id, state=Running()), traceparent=TRACEPARENT)
    info = TaskRunInfo(id=uuid4(), flow_run_id=run_id, name="t-0", task_key="t")
    states = TaskRunStates(reports=[TaskRunStateReport(task_run=info, state=Completed(), version=1)])
    await client.send(states, traceparent=TRACEPARENT)
    await client.send(Logs(logs=[LogRecord(message="x")]))
    assert [r.headers.get("traceparent") for r in api.requests] == [TRACEPARENT, TRACEPARENT, None]
    assert all(r.headers["content-type"] == "application/json" for r in api.requests)


async def test_http_reads(client: BatonClient, api: FakeApi) -> None:
    page = await client.read_flow_runs(limit=10, state="COMPLETED", tag=None)
    assert len(page.items) == 1 and page.next_cursor == "c2"
    assert api.requests[0].url.params == httpx.QueryParams({"limit": "10", "state": "COMPLETED"})
    streamed = [record.message async for record in client.stream_logs(uuid4())]
    assert streamed == ["streamed", "streamed"]


async def test_a_log_stream_the_server_ends_at_shutdown_says_so() -> None:
    """`event: shutdown` (the server is stopping) is not a record, nor the run's end."""

    def stopping(request: httpx.Request) -> httpx.Response:
        record = LogRecord(message="before").model_dump_json()
        body = f"data: {record}\n\nretry: 2000\nevent: shutdown\ndata: the server is stopping\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    streamed: list[str] = []
    async with BatonClient(API, transport=httpx.MockTransport(stopping)) as client:
        with pytest.raises(TransportUnavailable, match="stopping"):
            async for record in client.stream_logs(uuid4()):
                streamed.append(record.message)
    assert streamed == ["before"]


async def test_http_errors_are_classified(client: BatonClient, api: FakeApi) -> None:
    api.status = 503
    with pytest.raises(TransportUnavailable):
        await client.read_flow_run(uuid4())
    api.status = 404
    with pytest.raises(RequestRejected) as rejected:
        await client.read_flow_run(uuid4())
    assert rejected.value.status == 404 and rejected.value.detail == "nope"


async def test_http_connection_failure_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with BatonClient(API, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(TransportUnavailable):
            await client.send(Heartbeat())


def test_sync_client_against_an_unreachable_server() -> None:
    with SyncBatonClient("http://127.0.0.1:9/api", timeout=1) as client:
        with pytest.raises(TransportUnavailable):
            client.read_flow_runs()


# --- AMQP -----------------------------------------------------------------------------------


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
                reply = RpcReply(ok=True, flow_run=_flow_run(request.run.id))
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
        for _ in range(200):
            if len(received) == 4:
                break
            await asyncio.sleep(0.01)
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
        for _ in range(200):
            if len(received) == 3:
                break
            await asyncio.sleep(0.01)
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
