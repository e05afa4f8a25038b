"""The HTTP transport's wire contract, against httpx's mock transport (the AMQP transport's is
tests/integration/test_amqp_transport.py, against the real RabbitMQ)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from baton._transport import RequestRejected, TransportUnavailable
from baton._transport.http import BatonClient, SyncBatonClient
from baton_schemas.envelopes import (
    Heartbeat,
    Logs,
    ProposeState,
    TaskRunStateReport,
    TaskRunStates,
)
from baton_schemas.logs import LogRecord
from baton_schemas.runs import FlowRunCreate, TaskRunInfo
from baton_schemas.states import Completed, Running, TransitionResult, Verdict

from ...support.models import a_flow_run

API = "http://baton.test/api"


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
            return httpx.Response(201, content=a_flow_run(body["id"]).to_json())
        if path.endswith("/set_state"):
            body = json.loads(request.content)
            result = TransitionResult(verdict=Verdict.ACCEPT, state=Running(), state_version=2)
            assert body["force"] is False and body["transition_id"]
            return httpx.Response(200, content=result.to_json())
        if path in ("/api/task_runs/states", "/api/logs", "/api/flow_runs/heartbeat"):
            return httpx.Response(202)
        if path == "/api/flow_runs" and request.method == "GET":
            page = {"items": [a_flow_run().model_dump(mode="json")], "next_cursor": "c2"}
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
