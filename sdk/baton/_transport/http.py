"""HTTP client of Baton's API, for the engine (async) and the CLI (`SyncBatonClient`).

    async with BatonClient("http://127.0.0.1:4200/api", api_key=None) as client:
        run = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
        result = await client.set_flow_run_state(run.id, Running())

Errors: `TransportUnavailable` (connection failure, timeout, 5xx, 429: retry) and
`RequestRejected` (other 4xx, with `status` and `detail`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter

from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
from baton_schemas.flows import Flow, FlowCreate
from baton_schemas.logs import LogRecord
from baton_schemas.runs import FlowRun, FlowRunCreate, TaskRun
from baton_schemas.states import State, TransitionResult

from .._loop_thread import LoopThread
from ._errors import RequestRejected, TransportUnavailable

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_JSON = {"content-type": "application/json"}
_SEND_PATHS: dict[type[BaseModel], str] = {
    TaskRunStates: "/task_runs/states",
    Logs: "/logs",
    Heartbeat: "/flow_runs/heartbeat",
}
_STATES = TypeAdapter(list[State])


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:500]


class BatonClient:
    """Async client of the API. Satisfies `baton._transport.Transport`."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"user-agent": "baton-sdk"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> BatonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, body: bytes | None = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method, path, content=body, params=params, headers=_JSON if body is not None else None
            )
        except httpx.TransportError as exc:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {exc!r}") from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {status} {_detail(response)}")
        if status >= 400:
            raise RequestRejected(status, _detail(response))
        return response

    async def _page(self, path: str, model: type[M], params: dict[str, Any]) -> Page[M]:
        body = (await self._request("GET", path, params=params)).json()
        return Page([model.model_validate(item) for item in body["items"]], body.get("next_cursor"))

    # --- writes ---------------------------------------------------------------------------

    async def create_flow(self, flow: FlowCreate) -> Flow:
        response = await self._request("POST", "/flows", body=flow.to_json())
        return Flow.model_validate_json(response.content)

    async def create_flow_run(self, run: FlowRunCreate) -> FlowRun:
        response = await self._request("POST", "/flow_runs", body=run.to_json())
        return FlowRun.model_validate_json(response.content)

    async def set_flow_run_state(
        self,
        flow_run_id: UUID,
        state: State,
        *,
        transition_id: UUID | None = None,
        force: bool = False,
    ) -> TransitionResult:
        body = orjson.dumps(
            {
                "state": state.model_dump(mode="json"),
                "transition_id": str(transition_id or uuid4()),
                "force": force,
            }
        )
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/set_state", body=body)
        return TransitionResult.model_validate_json(response.content)

    async def propose_state(self, proposal: ProposeState) -> TransitionResult:
        return await self.set_flow_run_state(
            proposal.flow_run_id,
            proposal.state,
            transition_id=proposal.transition_id,
            force=proposal.force,
        )

    async def send(self, message: TaskRunStates | Logs | Heartbeat) -> None:
        await self._request("POST", _SEND_PATHS[type(message)], body=message.to_json())

    # --- reads ----------------------------------------------------------------------------

    async def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        state: str | list[str] | None = None,
        flow_name: str | None = None,
        tag: str | list[str] | None = None,
    ) -> Page[FlowRun]:
        params = {"limit": limit, "cursor": cursor, "state": state, "flow_name": flow_name, "tag": tag}
        return await self._page("/flow_runs", FlowRun, params)

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        response = await self._request("GET", f"/flow_runs/{flow_run_id}")
        return FlowRun.model_validate_json(response.content)

    async def read_flow_run_states(self, flow_run_id: UUID) -> list[State]:
        response = await self._request("GET", f"/flow_runs/{flow_run_id}/states")
        return _STATES.validate_json(response.content)

    async def cancel_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/cancel")
        return TransitionResult.model_validate_json(response.content)

    async def read_task_runs(
        self, flow_run_id: UUID, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[TaskRun]:
        params = {"flow_run_id": str(flow_run_id), "cursor": cursor, "limit": limit}
        return await self._page("/task_runs", TaskRun, params)

    async def read_task_run_states(self, task_run_id: UUID) -> list[State]:
        response = await self._request("GET", f"/task_runs/{task_run_id}/states")
        return _STATES.validate_json(response.content)

    async def read_logs(
        self, flow_run_id: UUID, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[LogRecord]:
        params = {"flow_run_id": str(flow_run_id), "cursor": cursor, "limit": limit}
        return await self._page("/logs", LogRecord, params)

    async def stream_logs(self, flow_run_id: UUID) -> AsyncGenerator[LogRecord, None]:
        """Follow a run's logs (server-sent events) until the run is terminal."""
        params = {"flow_run_id": str(flow_run_id)}
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        try:
            async with self._http.stream("GET", "/logs/stream", params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code >= 500:
                        raise TransportUnavailable(f"GET /logs/stream: {response.status_code}")
                    raise RequestRejected(response.status_code, _detail(response))
                event, data = "message", []
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif not line:
                        if event == "end":
                            return
                        if data:
                            yield LogRecord.model_validate_json("\n".join(data))
                        event, data = "message", []
                if event == "end":
                    return
        except httpx.TransportError as exc:
            raise TransportUnavailable(f"GET /logs/stream: {exc!r}") from exc


class SyncBatonClient:
    """Blocking facade of `BatonClient` for the CLI; each call runs on a private loop thread."""

    def __init__(self, api_url: str, api_key: str | None = None, *, timeout: float = 10.0) -> None:
        self._thread = LoopThread("baton-http-client")
        self._client: BatonClient = self._run(self._make(api_url, api_key, timeout))

    @staticmethod
    async def _make(api_url: str, api_key: str | None, timeout: float) -> BatonClient:
        return BatonClient(api_url, api_key, timeout=timeout)

    def _run(self, coro: Any) -> Any:
        return self._thread.submit(coro).result()

    def __enter__(self) -> SyncBatonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.running:
            self._run(self._client.close())
        self._thread.stop()

    def create_flow(self, flow: FlowCreate) -> Flow:
        return self._run(self._client.create_flow(flow))  # type: ignore[no-any-return]

    def create_flow_run(self, run: FlowRunCreate) -> FlowRun:
        return self._run(self._client.create_flow_run(run))  # type: ignore[no-any-return]

    def set_flow_run_state(
        self, flow_run_id: UUID, state: State, *, transition_id: UUID | None = None, force: bool = False
    ) -> TransitionResult:
        coro = self._client.set_flow_run_state(flow_run_id, state, transition_id=transition_id, force=force)
        return self._run(coro)  # type: ignore[no-any-return]

    def read_flow_runs(self, **filters: Any) -> Page[FlowRun]:
        return self._run(self._client.read_flow_runs(**filters))  # type: ignore[no-any-return]

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        return self._run(self._client.read_flow_run(flow_run_id))  # type: ignore[no-any-return]

    def read_flow_run_states(self, flow_run_id: UUID) -> list[State]:
        return self._run(self._client.read_flow_run_states(flow_run_id))  # type: ignore[no-any-return]

    def cancel_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        return self._run(self._client.cancel_flow_run(flow_run_id))  # type: ignore[no-any-return]

    def read_task_runs(self, flow_run_id: UUID, **kwargs: Any) -> Page[TaskRun]:
        return self._run(self._client.read_task_runs(flow_run_id, **kwargs))  # type: ignore[no-any-return]

    def read_task_run_states(self, task_run_id: UUID) -> list[State]:
        return self._run(self._client.read_task_run_states(task_run_id))  # type: ignore[no-any-return]

    def read_logs(self, flow_run_id: UUID, **kwargs: Any) -> Page[LogRecord]:
        return self._run(self._client.read_logs(flow_run_id, **kwargs))  # type: ignore[no-any-return]

    def stream_logs(self, flow_run_id: UUID) -> Iterator[LogRecord]:
        stream = self._client.stream_logs(flow_run_id)
        step: Future[LogRecord] | None = None
        try:
            while True:
                step = self._thread.submit(stream.__anext__())
                try:
                    yield step.result()
                except StopAsyncIteration:
                    return
        finally:
            if step is not None and not step.done():  # interrupted (Ctrl-C) while waiting
                step.cancel()
            with contextlib.suppress(Exception):
                self._run(stream.aclose())
