"""HTTP client of Baton's API, for the engine (async) and the CLI (`SyncBatonClient`).

    async with BatonClient("http://127.0.0.1:4200/api", api_key=None) as client:
        run = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
        result = await client.set_flow_run_state(run.id, Running())

Errors: `TransportUnavailable` (connection failure, timeout, 5xx, 429: retry) and
`RequestRejected` (other 4xx, with `status` and `detail`).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID, uuid4

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter

from baton_schemas import compat
from baton_schemas.access import ApiKeyInfo, AuditPage
from baton_schemas.artifacts import Artifact, ArtifactCreate
from baton_schemas.backfill import BackfillCreate, BackfillResult
from baton_schemas.compat import WorkerConnection
from baton_schemas.concurrency import (
    AcquireSlots,
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    ConcurrencyLimitUpdate,
    RenewLease,
    SlotsAcquired,
    SlotsUnavailable,
)
from baton_schemas.deployments import Deployment, DeploymentCreate, DeploymentRunCreate
from baton_schemas.envelopes import (
    Claim,
    Heartbeat,
    HeartbeatReply,
    Logs,
    ProposeState,
    SetState,
    TaskRunStates,
)
from baton_schemas.flows import Flow, FlowCreate
from baton_schemas.logs import LogRecord
from baton_schemas.pages import FlowRunPage, LogPage, Page, TaskRunPage
from baton_schemas.pauses import FlowRunInput, PauseFlowRun, ResumeFlowRun, SuspendFlowRun
from baton_schemas.pools import (
    Worker,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)
from baton_schemas.runs import FlowRun, FlowRunCreate, TaskRun
from baton_schemas.schedules import DeploymentSchedule, UpcomingSlots
from baton_schemas.states import State, TransitionResult
from baton_schemas.variables import StoredVariable, VariableCreate, VariableWrite

from .._loop_thread import LoopThread
from .._tracing import TRACEPARENT
from ._errors import RequestRejected, TransportUnavailable

P = TypeVar("P", bound=Page[Any])
M = TypeVar("M", bound=BaseModel)

_JSON = {"content-type": "application/json"}
_SEND_PATHS: dict[type[BaseModel], str] = {
    TaskRunStates: "/task_runs/states",
    Logs: "/logs",
    Heartbeat: "/flow_runs/heartbeat",
}
_STATES = TypeAdapter(list[State])
_FLOWS = TypeAdapter(list[Flow])
_KEYS = TypeAdapter(list[ApiKeyInfo])
_POOLS = TypeAdapter(list[WorkPool])
_QUEUES = TypeAdapter(list[WorkQueue])
_WORKERS = TypeAdapter(list[Worker])
_DEPLOYMENTS = TypeAdapter(list[Deployment])
_SCHEDULES = TypeAdapter(list[DeploymentSchedule])
_UPCOMING = TypeAdapter(list[UpcomingSlots])
_VARIABLES = TypeAdapter(list[StoredVariable])
_ARTIFACTS = TypeAdapter(list[Artifact])
_LIMITS = TypeAdapter(list[ConcurrencyLimit])


def _quote(segment: str) -> str:
    """A name as one URL path segment."""
    return quote(segment, safe="")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return _validation_errors(detail) if isinstance(detail, list) else str(detail)
    return str(body)[:500]


def _validation_errors(errors: list[Any]) -> str:
    """FastAPI's 422 list as one line: `parameters.count: Input should be a valid integer`."""
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            parts.append(str(error))
            continue
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)[:2000]


def _tls_for(api_url: str) -> ssl.SSLContext | bool:
    """Plain HTTP needs no TLS: an empty context (it trusts no one, so an https URL reached by
    mistake fails closed) saves loading the CA bundle, 30-50 ms for every client made."""
    if api_url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


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
        headers = {
            "user-agent": f"baton-sdk/{compat.baton_version()}",
            # an API of another version refuses the request, naming both (409)
            compat.VERSION_HEADER: compat.baton_version(),
            compat.SCHEMA_HEADER: str(compat.SCHEMA_VERSION),
            compat.MIN_SCHEMA_HEADER: str(compat.MIN_SCHEMA_VERSION),
        }
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=_tls_for(self.api_url),
        )

    async def __aenter__(self) -> BatonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        accept: tuple[int, ...] = (),
        traceparent: str | None = None,
    ) -> httpx.Response:
        """The response; raises for 4xx and 5xx unless the status is one of `accept`."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = _JSON if body is not None else None
        if traceparent is not None:  # the sender's span, for the server's spans of the request
            headers = {**(headers or {}), TRACEPARENT: traceparent}
        try:
            response = await self._http.request(
                method,
                path,
                content=body,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {exc!r}") from exc
        status = response.status_code
        if status in accept:
            return response
        if status >= 500 or status == 429:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {status} {_detail(response)}")
        if status >= 400:
            raise RequestRejected(status, _detail(response))
        return response

    async def _page(self, path: str, page: type[P], params: dict[str, Any]) -> P:
        return page.model_validate_json((await self._request("GET", path, params=params)).content)

    async def _read_or_none(self, path: str, model: type[M]) -> M | None:
        """GET one thing; None if there is none (404)."""
        try:
            response = await self._request("GET", path)
        except RequestRejected as exc:
            if exc.status == 404:
                return None
            raise
        return model.model_validate_json(response.content)

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
        claim: Claim | None = None,
        claim_id: UUID | None = None,
    ) -> TransitionResult:
        body = SetState(
            state=state, transition_id=transition_id or uuid4(), force=force, claim=claim, claim_id=claim_id
        )
        return await self._set_state(flow_run_id, body)

    async def propose_state(
        self, proposal: ProposeState, *, traceparent: str | None = None
    ) -> TransitionResult:
        return await self._set_state(proposal.flow_run_id, SetState.of(proposal), traceparent)

    async def _set_state(
        self, flow_run_id: UUID, body: SetState, traceparent: str | None = None
    ) -> TransitionResult:
        response = await self._request(
            "POST", f"/flow_runs/{flow_run_id}/set_state", body=body.to_json(), traceparent=traceparent
        )
        return TransitionResult.model_validate_json(response.content)

    async def send(
        self, message: TaskRunStates | Logs | Heartbeat, *, traceparent: str | None = None
    ) -> None:
        await self._request(
            "POST", _SEND_PATHS[type(message)], body=message.to_json(), traceparent=traceparent
        )

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        response = await self._request("POST", _SEND_PATHS[Heartbeat], body=message.to_json())
        return HeartbeatReply.model_validate_json(response.content).cancelling

    # --- reads ----------------------------------------------------------------------------

    async def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        state: str | list[str] | None = None,
        flow_name: str | None = None,
        tag: str | list[str] | None = None,
        name: str | None = None,
        id_prefix: str | None = None,
    ) -> FlowRunPage:
        params = {
            "limit": limit,
            "cursor": cursor,
            "state": state,
            "flow_name": flow_name,
            "tag": tag,
            "name": name,
            "id_prefix": id_prefix,
        }
        return await self._page("/flow_runs", FlowRunPage, params)

    async def read_audit(self, **filters: Any) -> AuditPage:
        """The audit log, newest first (an admin key): key_id, key_name, since, until, cursor,
        limit."""
        return await self._page("/audit", AuditPage, filters)

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        response = await self._request("GET", f"/flow_runs/{flow_run_id}")
        return FlowRun.model_validate_json(response.content)

    async def read_flow_run_states(self, flow_run_id: UUID) -> list[State]:
        response = await self._request("GET", f"/flow_runs/{flow_run_id}/states")
        return _STATES.validate_json(response.content)

    async def cancel_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/cancel")
        return TransitionResult.model_validate_json(response.content)

    async def retry_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/retry")
        return TransitionResult.model_validate_json(response.content)

    async def delete_flow_run(self, flow_run_id: UUID) -> None:
        await self._request("DELETE", f"/flow_runs/{flow_run_id}")

    async def pause_flow_run(self, flow_run_id: UUID, request: PauseFlowRun) -> TransitionResult:
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/pause", body=request.to_json())
        return TransitionResult.model_validate_json(response.content)

    async def resume_flow_run(
        self, flow_run_id: UUID, run_input: dict[str, Any] | None = None
    ) -> TransitionResult:
        """422 (RequestRejected) if the input does not fit the pause; 409 if the run is not paused."""
        body = ResumeFlowRun(run_input=run_input).to_json()
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/resume", body=body)
        return TransitionResult.model_validate_json(response.content)

    async def suspend_flow_run(self, flow_run_id: UUID, *, reason: str | None = None) -> TransitionResult:
        """409 (RequestRejected) if the run is over, paused already, or not a deployment's."""
        body = SuspendFlowRun(reason=reason).to_json()
        response = await self._request("POST", f"/flow_runs/{flow_run_id}/suspend", body=body)
        return TransitionResult.model_validate_json(response.content)

    async def read_flow_run_input(self, flow_run_id: UUID, key: str) -> FlowRunInput | None:
        """What the run's pause `key` was resumed with; None if it has not been."""
        return await self._read_or_none(f"/flow_runs/{flow_run_id}/inputs/{_quote(key)}", FlowRunInput)

    async def read_task_runs(
        self, flow_run_id: UUID, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskRunPage:
        params = {"flow_run_id": str(flow_run_id), "cursor": cursor, "limit": limit}
        return await self._page("/task_runs", TaskRunPage, params)

    async def read_task_run(self, task_run_id: UUID) -> TaskRun:
        response = await self._request("GET", f"/task_runs/{task_run_id}")
        return TaskRun.model_validate_json(response.content)

    async def read_flows(self) -> list[Flow]:
        response = await self._request("GET", "/flows")
        return _FLOWS.validate_json(response.content)

    async def read_api_keys(self, include_revoked: bool = False) -> list[ApiKeyInfo]:
        """The API keys (never their secrets); needs an admin key."""
        params = {"include_revoked": "true"} if include_revoked else None
        response = await self._request("GET", "/api_keys", params=params)
        return _KEYS.validate_json(response.content)

    async def revoke_api_key(self, key_id: UUID) -> None:
        await self._request("DELETE", f"/api_keys/{key_id}")

    async def read_task_run_states(self, task_run_id: UUID) -> list[State]:
        response = await self._request("GET", f"/task_runs/{task_run_id}/states")
        return _STATES.validate_json(response.content)

    async def read_logs(
        self, flow_run_id: UUID, *, cursor: str | None = None, limit: int | None = None
    ) -> LogPage:
        params = {"flow_run_id": str(flow_run_id), "cursor": cursor, "limit": limit}
        return await self._page("/logs", LogPage, params)

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
                        if event == "shutdown":
                            raise TransportUnavailable("GET /logs/stream: the server is stopping")
                        if data and event == "message":
                            yield LogRecord.model_validate_json("\n".join(data))
                        event, data = "message", []
                if event == "end":
                    return
        except httpx.TransportError as exc:
            raise TransportUnavailable(f"GET /logs/stream: {exc!r}") from exc

    # --- work pools, queues, deployments ---------------------------------------------------

    async def create_work_pool(self, pool: WorkPoolCreate) -> WorkPool:
        response = await self._request("POST", "/work_pools", body=pool.to_json())
        return WorkPool.model_validate_json(response.content)

    async def read_work_pools(self) -> list[WorkPool]:
        return _POOLS.validate_json((await self._request("GET", "/work_pools")).content)

    async def read_work_pool(self, pool: str) -> WorkPool:
        response = await self._request("GET", f"/work_pools/{_quote(pool)}")
        return WorkPool.model_validate_json(response.content)

    async def update_work_pool(self, pool: str, update: WorkPoolUpdate) -> WorkPool:
        body = orjson.dumps(update.model_dump(mode="json", exclude_unset=True))
        response = await self._request("PATCH", f"/work_pools/{_quote(pool)}", body=body)
        return WorkPool.model_validate_json(response.content)

    async def delete_work_pool(self, pool: str) -> None:
        await self._request("DELETE", f"/work_pools/{_quote(pool)}")

    async def read_work_queues(self, pool: str) -> list[WorkQueue]:
        response = await self._request("GET", f"/work_pools/{_quote(pool)}/queues")
        return _QUEUES.validate_json(response.content)

    async def create_work_queue(self, pool: str, queue: WorkQueueCreate) -> WorkQueue:
        response = await self._request("POST", f"/work_pools/{_quote(pool)}/queues", body=queue.to_json())
        return WorkQueue.model_validate_json(response.content)

    async def update_work_queue(self, pool: str, queue: str, update: WorkQueueUpdate) -> WorkQueue:
        body = orjson.dumps(update.model_dump(mode="json", exclude_unset=True))
        path = f"/work_pools/{_quote(pool)}/queues/{_quote(queue)}"
        return WorkQueue.model_validate_json((await self._request("PATCH", path, body=body)).content)

    async def delete_work_queue(self, pool: str, queue: str) -> None:
        await self._request("DELETE", f"/work_pools/{_quote(pool)}/queues/{_quote(queue)}")

    async def read_workers(self, pool: str) -> list[Worker]:
        response = await self._request("GET", f"/work_pools/{_quote(pool)}/workers")
        return _WORKERS.validate_json(response.content)

    async def read_worker_connection(
        self, *, version: str, schema_version: int, min_schema_version: int
    ) -> WorkerConnection:
        """How a worker reaches the broker; 409 if this worker's versions and the server's do
        not work together."""
        params = {
            "version": version,
            "schema_version": schema_version,
            "min_schema_version": min_schema_version,
        }
        response = await self._request("GET", "/workers/connection", params=params)
        return WorkerConnection.model_validate_json(response.content)

    async def create_deployment(self, deployment: DeploymentCreate) -> Deployment:
        """Create or update (by flow name and deployment name)."""
        response = await self._request("POST", "/deployments", body=deployment.to_json())
        return Deployment.model_validate_json(response.content)

    async def read_deployments(self, *, flow_name: str | None = None) -> list[Deployment]:
        response = await self._request("GET", "/deployments", params={"flow_name": flow_name})
        return _DEPLOYMENTS.validate_json(response.content)

    async def read_deployment(self, deployment_id: UUID) -> Deployment:
        response = await self._request("GET", f"/deployments/{deployment_id}")
        return Deployment.model_validate_json(response.content)

    async def read_deployment_by_name(self, flow_name: str, deployment_name: str) -> Deployment:
        path = f"/deployments/name/{_quote(flow_name)}/{_quote(deployment_name)}"
        return Deployment.model_validate_json((await self._request("GET", path)).content)

    async def delete_deployment(self, deployment_id: UUID) -> None:
        await self._request("DELETE", f"/deployments/{deployment_id}")

    async def create_deployment_run(self, deployment_id: UUID, run: DeploymentRunCreate) -> FlowRun:
        response = await self._request("POST", f"/deployments/{deployment_id}/runs", body=run.to_json())
        return FlowRun.model_validate_json(response.content)

    async def read_schedules(self, deployment_id: UUID) -> list[DeploymentSchedule]:
        response = await self._request("GET", f"/deployments/{deployment_id}/schedules")
        return _SCHEDULES.validate_json(response.content)

    async def read_upcoming_slots(self, deployment_id: UUID, n: int = 5) -> list[UpcomingSlots]:
        response = await self._request(
            "GET", f"/deployments/{deployment_id}/schedules/upcoming", params={"n": n}
        )
        return _UPCOMING.validate_json(response.content)

    async def set_schedule_active(
        self, deployment_id: UUID, schedule: str, active: bool
    ) -> DeploymentSchedule:
        action = "resume" if active else "pause"
        path = f"/deployments/{deployment_id}/schedules/{_quote(schedule)}/{action}"
        return DeploymentSchedule.model_validate_json((await self._request("POST", path)).content)

    async def delete_schedule(self, deployment_id: UUID, schedule: str) -> None:
        await self._request("DELETE", f"/deployments/{deployment_id}/schedules/{_quote(schedule)}")

    async def set_deployment_paused(self, deployment_id: UUID, paused: bool) -> Deployment:
        path = f"/deployments/{deployment_id}/{'pause' if paused else 'resume'}"
        return Deployment.model_validate_json((await self._request("POST", path)).content)

    async def backfill_deployment(self, deployment_id: UUID, request: BackfillCreate) -> BackfillResult:
        response = await self._request(
            "POST", f"/deployments/{deployment_id}/backfill", body=request.to_json()
        )
        return BackfillResult.model_validate_json(response.content)

    # --- variables and artifacts -----------------------------------------------------------

    async def read_variable(self, name: str) -> StoredVariable | None:
        """The variable, or None if there is none of that name."""
        return await self._read_or_none(f"/variables/{_quote(name)}", StoredVariable)

    async def read_variables(
        self, *, tag: list[str] | None = None, prefix: str | None = None, limit: int | None = None
    ) -> list[StoredVariable]:
        params = {"tag": tag, "prefix": prefix, "limit": limit}
        return _VARIABLES.validate_json((await self._request("GET", "/variables", params=params)).content)

    async def create_variable(self, variable: VariableCreate) -> StoredVariable:
        """409 (RequestRejected) if the name is taken."""
        response = await self._request("POST", "/variables", body=variable.to_json())
        return StoredVariable.model_validate_json(response.content)

    async def write_variable(self, name: str, variable: VariableWrite) -> StoredVariable:
        """Create or overwrite."""
        response = await self._request("PUT", f"/variables/{_quote(name)}", body=variable.to_json())
        return StoredVariable.model_validate_json(response.content)

    async def delete_variable(self, name: str) -> bool:
        """Whether there was such a variable."""
        try:
            await self._request("DELETE", f"/variables/{_quote(name)}")
        except RequestRejected as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def create_artifact(self, artifact: ArtifactCreate) -> Artifact:
        response = await self._request("POST", "/artifacts", body=artifact.to_json())
        return Artifact.model_validate_json(response.content)

    async def read_artifacts(self, **filters: Any) -> list[Artifact]:
        """Newest first. Filters: key, flow_run_id, task_run_id, type, latest, limit."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items()}
        return _ARTIFACTS.validate_json((await self._request("GET", "/artifacts", params=params)).content)

    async def read_artifact(self, artifact_id: UUID) -> Artifact:
        return Artifact.model_validate_json((await self._request("GET", f"/artifacts/{artifact_id}")).content)

    async def delete_artifacts(self, key: str) -> None:
        await self._request("DELETE", f"/artifacts/key/{_quote(key)}")

    # --- concurrency limits ----------------------------------------------------------------

    async def create_concurrency_limit(self, limit: ConcurrencyLimitCreate) -> ConcurrencyLimit:
        """409 (RequestRejected) if the name is taken."""
        response = await self._request("POST", "/concurrency_limits", body=limit.to_json())
        return ConcurrencyLimit.model_validate_json(response.content)

    async def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return _LIMITS.validate_json((await self._request("GET", "/concurrency_limits")).content)

    async def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        """With its live leases; 404 (RequestRejected) if there is none of that name."""
        response = await self._request("GET", f"/concurrency_limits/{_quote(name)}")
        return ConcurrencyLimit.model_validate_json(response.content)

    async def update_concurrency_limit(self, name: str, update: ConcurrencyLimitUpdate) -> ConcurrencyLimit:
        response = await self._request("PATCH", f"/concurrency_limits/{_quote(name)}", body=update.to_json())
        return ConcurrencyLimit.model_validate_json(response.content)

    async def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        response = await self._request("POST", f"/concurrency_limits/{_quote(name)}/reset")
        return ConcurrencyLimit.model_validate_json(response.content)

    async def delete_concurrency_limit(self, name: str) -> None:
        await self._request("DELETE", f"/concurrency_limits/{_quote(name)}")

    async def acquire_slots(self, request: AcquireSlots) -> SlotsAcquired | SlotsUnavailable:
        """Granted, or not within `request.wait_seconds` (the server holds the request that long)."""
        response = await self._request(
            "POST",
            "/concurrency_limits/acquire",
            body=request.to_json(),
            timeout=request.wait_seconds + (self._http.timeout.read or 0) + 1,
            accept=(423,),
        )
        if response.status_code == 423:
            return SlotsUnavailable.model_validate_json(response.content)
        return SlotsAcquired.model_validate_json(response.content)

    async def renew_lease(self, lease_id: UUID, lease_seconds: float) -> bool:
        """Whether the lease was still live (False: expired or released; its slots are gone)."""
        try:
            body = RenewLease(lease_seconds=lease_seconds).to_json()
            await self._request("POST", f"/concurrency_leases/{lease_id}/renew", body=body)
        except RequestRejected as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def release_lease(self, lease_id: UUID) -> None:
        """Idempotent."""
        await self._request("DELETE", f"/concurrency_leases/{lease_id}")


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

    def set_flow_run_state(self, flow_run_id: UUID, state: State, **options: Any) -> TransitionResult:
        """Options: those of `BatonClient.set_flow_run_state`."""
        return self._run(self._client.set_flow_run_state(flow_run_id, state, **options))  # type: ignore[no-any-return]

    def read_flow_runs(self, **filters: Any) -> FlowRunPage:
        return self._run(self._client.read_flow_runs(**filters))  # type: ignore[no-any-return]

    def read_audit(self, **filters: Any) -> AuditPage:
        return self._run(self._client.read_audit(**filters))  # type: ignore[no-any-return]

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        return self._run(self._client.read_flow_run(flow_run_id))  # type: ignore[no-any-return]

    def read_flow_run_states(self, flow_run_id: UUID) -> list[State]:
        return self._run(self._client.read_flow_run_states(flow_run_id))  # type: ignore[no-any-return]

    def cancel_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        return self._run(self._client.cancel_flow_run(flow_run_id))  # type: ignore[no-any-return]

    def read_task_runs(self, flow_run_id: UUID, **kwargs: Any) -> TaskRunPage:
        return self._run(self._client.read_task_runs(flow_run_id, **kwargs))  # type: ignore[no-any-return]

    def read_task_run_states(self, task_run_id: UUID) -> list[State]:
        return self._run(self._client.read_task_run_states(task_run_id))  # type: ignore[no-any-return]

    def retry_flow_run(self, flow_run_id: UUID) -> TransitionResult:
        return self._run(self._client.retry_flow_run(flow_run_id))  # type: ignore[no-any-return]

    def delete_flow_run(self, flow_run_id: UUID) -> None:
        self._run(self._client.delete_flow_run(flow_run_id))

    def pause_flow_run(self, flow_run_id: UUID, request: PauseFlowRun) -> TransitionResult:
        return self._run(self._client.pause_flow_run(flow_run_id, request))  # type: ignore[no-any-return]

    def resume_flow_run(self, flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> TransitionResult:
        return self._run(self._client.resume_flow_run(flow_run_id, run_input))  # type: ignore[no-any-return]

    def suspend_flow_run(self, flow_run_id: UUID, *, reason: str | None = None) -> TransitionResult:
        return self._run(self._client.suspend_flow_run(flow_run_id, reason=reason))  # type: ignore[no-any-return]

    def read_flow_run_input(self, flow_run_id: UUID, key: str) -> FlowRunInput | None:
        return self._run(self._client.read_flow_run_input(flow_run_id, key))  # type: ignore[no-any-return]

    def read_task_run(self, task_run_id: UUID) -> TaskRun:
        return self._run(self._client.read_task_run(task_run_id))  # type: ignore[no-any-return]

    def read_flows(self) -> list[Flow]:
        return self._run(self._client.read_flows())  # type: ignore[no-any-return]

    def read_api_keys(self, include_revoked: bool = False) -> list[ApiKeyInfo]:
        return self._run(self._client.read_api_keys(include_revoked))  # type: ignore[no-any-return]

    def revoke_api_key(self, key_id: UUID) -> None:
        self._run(self._client.revoke_api_key(key_id))

    def read_logs(self, flow_run_id: UUID, **kwargs: Any) -> LogPage:
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

    def create_work_pool(self, pool: WorkPoolCreate) -> WorkPool:
        return self._run(self._client.create_work_pool(pool))  # type: ignore[no-any-return]

    def read_work_pools(self) -> list[WorkPool]:
        return self._run(self._client.read_work_pools())  # type: ignore[no-any-return]

    def read_work_pool(self, pool: str) -> WorkPool:
        return self._run(self._client.read_work_pool(pool))  # type: ignore[no-any-return]

    def update_work_pool(self, pool: str, update: WorkPoolUpdate) -> WorkPool:
        return self._run(self._client.update_work_pool(pool, update))  # type: ignore[no-any-return]

    def delete_work_pool(self, pool: str) -> None:
        self._run(self._client.delete_work_pool(pool))

    def read_work_queues(self, pool: str) -> list[WorkQueue]:
        return self._run(self._client.read_work_queues(pool))  # type: ignore[no-any-return]

    def create_work_queue(self, pool: str, queue: WorkQueueCreate) -> WorkQueue:
        return self._run(self._client.create_work_queue(pool, queue))  # type: ignore[no-any-return]

    def update_work_queue(self, pool: str, queue: str, update: WorkQueueUpdate) -> WorkQueue:
        return self._run(self._client.update_work_queue(pool, queue, update))  # type: ignore[no-any-return]

    def delete_work_queue(self, pool: str, queue: str) -> None:
        self._run(self._client.delete_work_queue(pool, queue))

    def read_workers(self, pool: str) -> list[Worker]:
        return self._run(self._client.read_workers(pool))  # type: ignore[no-any-return]

    def create_deployment(self, deployment: DeploymentCreate) -> Deployment:
        return self._run(self._client.create_deployment(deployment))  # type: ignore[no-any-return]

    def read_deployments(self, *, flow_name: str | None = None) -> list[Deployment]:
        return self._run(self._client.read_deployments(flow_name=flow_name))  # type: ignore[no-any-return]

    def read_deployment(self, deployment_id: UUID) -> Deployment:
        return self._run(self._client.read_deployment(deployment_id))  # type: ignore[no-any-return]

    def read_deployment_by_name(self, flow_name: str, deployment_name: str) -> Deployment:
        coro = self._client.read_deployment_by_name(flow_name, deployment_name)
        return self._run(coro)  # type: ignore[no-any-return]

    def delete_deployment(self, deployment_id: UUID) -> None:
        self._run(self._client.delete_deployment(deployment_id))

    def create_deployment_run(self, deployment_id: UUID, run: DeploymentRunCreate) -> FlowRun:
        return self._run(self._client.create_deployment_run(deployment_id, run))  # type: ignore[no-any-return]

    def read_schedules(self, deployment_id: UUID) -> list[DeploymentSchedule]:
        return self._run(self._client.read_schedules(deployment_id))  # type: ignore[no-any-return]

    def read_upcoming_slots(self, deployment_id: UUID, n: int = 5) -> list[UpcomingSlots]:
        return self._run(self._client.read_upcoming_slots(deployment_id, n))  # type: ignore[no-any-return]

    def set_schedule_active(self, deployment_id: UUID, schedule: str, active: bool) -> DeploymentSchedule:
        return self._run(self._client.set_schedule_active(deployment_id, schedule, active))  # type: ignore[no-any-return]

    def delete_schedule(self, deployment_id: UUID, schedule: str) -> None:
        self._run(self._client.delete_schedule(deployment_id, schedule))

    def set_deployment_paused(self, deployment_id: UUID, paused: bool) -> Deployment:
        return self._run(self._client.set_deployment_paused(deployment_id, paused))  # type: ignore[no-any-return]

    def backfill_deployment(self, deployment_id: UUID, request: BackfillCreate) -> BackfillResult:
        return self._run(self._client.backfill_deployment(deployment_id, request))  # type: ignore[no-any-return]

    def read_variable(self, name: str) -> StoredVariable | None:
        return self._run(self._client.read_variable(name))  # type: ignore[no-any-return]

    def read_variables(self, **filters: Any) -> list[StoredVariable]:
        return self._run(self._client.read_variables(**filters))  # type: ignore[no-any-return]

    def create_variable(self, variable: VariableCreate) -> StoredVariable:
        return self._run(self._client.create_variable(variable))  # type: ignore[no-any-return]

    def write_variable(self, name: str, variable: VariableWrite) -> StoredVariable:
        return self._run(self._client.write_variable(name, variable))  # type: ignore[no-any-return]

    def delete_variable(self, name: str) -> bool:
        return self._run(self._client.delete_variable(name))  # type: ignore[no-any-return]

    def create_artifact(self, artifact: ArtifactCreate) -> Artifact:
        return self._run(self._client.create_artifact(artifact))  # type: ignore[no-any-return]

    def read_artifacts(self, **filters: Any) -> list[Artifact]:
        return self._run(self._client.read_artifacts(**filters))  # type: ignore[no-any-return]

    def read_artifact(self, artifact_id: UUID) -> Artifact:
        return self._run(self._client.read_artifact(artifact_id))  # type: ignore[no-any-return]

    def delete_artifacts(self, key: str) -> None:
        self._run(self._client.delete_artifacts(key))

    def create_concurrency_limit(self, limit: ConcurrencyLimitCreate) -> ConcurrencyLimit:
        return self._run(self._client.create_concurrency_limit(limit))  # type: ignore[no-any-return]

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return self._run(self._client.read_concurrency_limits())  # type: ignore[no-any-return]

    def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return self._run(self._client.read_concurrency_limit(name))  # type: ignore[no-any-return]

    def update_concurrency_limit(self, name: str, update: ConcurrencyLimitUpdate) -> ConcurrencyLimit:
        return self._run(self._client.update_concurrency_limit(name, update))  # type: ignore[no-any-return]

    def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return self._run(self._client.reset_concurrency_limit(name))  # type: ignore[no-any-return]

    def delete_concurrency_limit(self, name: str) -> None:
        self._run(self._client.delete_concurrency_limit(name))
