"""`run_deployment`: start a run of a deployment from anywhere, a flow included, and wait for it.

    from baton import run_deployment

    run = run_deployment("say-hello/prod", parameters={"name": "Ford"}, timeout=600)
    run.state.type  # COMPLETED

Inside a flow the new run is linked to the calling flow run as a subflow run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, overload
from uuid import UUID

from baton_schemas.deployments import Deployment, DeploymentRunCreate
from baton_schemas.runs import FlowRun

from ._context import flow_run_ctx, task_run_ctx
from ._exceptions import BatonError
from ._loop_thread import LoopThread
from ._settings import ClientSettings
from ._transport.http import BatonClient, SyncBatonClient

# Polling backoff while waiting for a run: from FIRST seconds, times FACTOR, up to MAX.
POLL_FIRST, POLL_FACTOR, POLL_MAX = 0.2, 1.5, 5.0


class NotConfigured(BatonError):
    """No API URL to talk to."""


class DeploymentNameError(BatonError, ValueError):
    """A deployment name that is neither `flow/deployment` nor an id."""


def _settings() -> ClientSettings:
    settings = ClientSettings.load()
    if not settings.api_url:
        raise NotConfigured(
            "BATON_API_URL is not set: export BATON_API_URL=http://HOST:4200/api "
            "(and BATON_API_KEY) or write them to $BATON_HOME/profile.env"
        )
    return settings


def connect() -> SyncBatonClient:
    """A blocking client of the API named by the settings (`BATON_API_URL`, `BATON_API_KEY`)."""
    settings = _settings()
    assert settings.api_url is not None
    return SyncBatonClient(settings.api_url, settings.api_key, timeout=settings.request_timeout)


def aconnect() -> BatonClient:
    """The async twin of `connect()`."""
    settings = _settings()
    assert settings.api_url is not None
    return BatonClient(settings.api_url, settings.api_key, timeout=settings.request_timeout)


@overload
def get_client(sync_client: Literal[False] = False) -> BatonClient: ...


@overload
def get_client(sync_client: Literal[True]) -> SyncBatonClient: ...


def get_client(sync_client: bool = False) -> BatonClient | SyncBatonClient:
    """A client of the configured API, as the reference system's `get_client()`:

        async with get_client() as client:
            runs = await client.read_flow_runs(limit=5)

        with get_client(sync_client=True) as client:
            client.read_flow_run(run_id)

    Raises NotConfigured when BATON_API_URL is not set (environment or profile)."""
    return connect() if sync_client else aconnect()


def split_name(name: str) -> tuple[str, str]:
    """`"say-hello/prod"` -> `("say-hello", "prod")`."""
    flow_name, sep, deployment_name = name.partition("/")
    if not sep or not flow_name or not deployment_name or "/" in deployment_name:
        raise DeploymentNameError(
            f"deployment {name!r}: use 'flow-name/deployment-name' or the deployment's id"
        )
    return flow_name, deployment_name


def _as_id(name: str | UUID) -> UUID | None:
    if isinstance(name, UUID):
        return name
    try:
        return UUID(name)
    except ValueError:
        return None


async def aread_deployment(client: BatonClient, name: str | UUID) -> Deployment:
    """A deployment by `flow/deployment` name or id."""
    deployment_id = _as_id(name)
    if deployment_id is not None:
        return await client.read_deployment(deployment_id)
    return await client.read_deployment_by_name(*split_name(str(name)))


def read_deployment(client: SyncBatonClient, name: str | UUID) -> Deployment:
    deployment_id = _as_id(name)
    if deployment_id is not None:
        return client.read_deployment(deployment_id)
    return client.read_deployment_by_name(*split_name(str(name)))


def _run_request(
    parameters: Mapping[str, Any] | None,
    job_variables: Mapping[str, Any] | None,
    tags: Iterable[str] | None,
    flow_run_name: str | None,
    idempotency_key: str | None,
    scheduled_time: datetime | None,
    as_subflow: bool,
) -> DeploymentRunCreate:
    fields: dict[str, Any] = {}
    parent = flow_run_ctx.get() if as_subflow else None
    if parent is not None:
        fields["parent_flow_run_id"] = parent.flow_run.id
        task = task_run_ctx.get()
        if task is not None:
            fields["parent_task_run_id"] = task.task_run.id
    return DeploymentRunCreate(
        parameters=dict(parameters or {}),
        job_variables=dict(job_variables or {}),
        tags=list(tags or ()),
        name=flow_run_name,
        idempotency_key=idempotency_key,
        scheduled_time=scheduled_time,
        **fields,
    )


async def await_terminal(client: BatonClient, run: FlowRun, timeout: float | None) -> FlowRun:
    """Poll the run (with backoff) until it is terminal or `timeout` seconds have passed; the
    run as last read either way."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_FIRST
    while not run.state.is_terminal:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        await asyncio.sleep(delay if left is None else min(delay, left))
        delay = min(delay * POLL_FACTOR, POLL_MAX)
        run = await client.read_flow_run(run.id)
    return run


async def _start_and_wait(name: str | UUID, request: DeploymentRunCreate, timeout: float | None) -> FlowRun:
    async with aconnect() as client:
        deployment = await aread_deployment(client, name)
        run = await client.create_deployment_run(deployment.id, request)
        if timeout == 0:
            return run
        return await await_terminal(client, run, timeout)


async def arun_deployment(
    name: str | UUID,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    job_variables: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    flow_run_name: str | None = None,
    idempotency_key: str | None = None,
    scheduled_time: datetime | None = None,
    as_subflow: bool = True,
) -> FlowRun:
    """`run_deployment` for async code (an async flow): the same arguments, awaited."""
    request = _run_request(
        parameters, job_variables, tags, flow_run_name, idempotency_key, scheduled_time, as_subflow
    )
    return await _start_and_wait(name, request, timeout)


def run_deployment(
    name: str | UUID,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    job_variables: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    flow_run_name: str | None = None,
    idempotency_key: str | None = None,
    scheduled_time: datetime | None = None,
    as_subflow: bool = True,
) -> FlowRun:
    """Create a run of a deployment (`"flow/deployment"` or its id) and wait for it to end.

    `parameters` are merged over the deployment's and validated by the server (a bad one raises
    `RequestRejected` naming the field; no run is created). `timeout`: seconds to wait for a
    terminal state, None to wait as long as it takes, 0 to return the Scheduled run at once.
    The run is returned in whatever state it reached. Inside a flow the run is linked to the
    calling flow run, unless `as_subflow=False`.
    """
    # Built here: the calling flow run is a context variable of this thread, not the loop's.
    request = _run_request(
        parameters, job_variables, tags, flow_run_name, idempotency_key, scheduled_time, as_subflow
    )
    thread = LoopThread("baton-run-deployment")
    try:
        return thread.submit(_start_and_wait(name, request, timeout)).result()
    finally:
        thread.stop()
