"""What a worker asks its API before it takes runs: how to reach the broker (and whether the
server serves this worker's version), and which of its pool's queues to read."""

from __future__ import annotations

import contextlib
import logging

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from baton_schemas import compat
from baton_schemas.compat import WorkerConnection
from baton_schemas.job_templates import default_process_template
from baton_schemas.pools import WorkPoolCreate, WorkQueueCreate
from baton_schemas.topology import pool_queue_name

from .._settings import ClientSettings
from .._transport import RequestRejected, TransportUnavailable
from .._transport.http import BatonClient
from ._intake import QueueSpec
from ._settings import WorkerSettings

logger = logging.getLogger("baton.worker")


class IncompatibleServer(RuntimeError):
    """This worker and its server do not work together (versions): the message says why."""


async def reach_api(client: ClientSettings, settings: WorkerSettings) -> WorkerConnection:
    """Ask the API how to reach the broker and whether it serves this worker's version; while
    it is unreachable, wait for it (capped, jittered backoff, a line each try)."""
    url = client.api_url
    assert url is not None

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning("Waiting for the API at %s (%s); trying again in %.1fs", url, error, pause)

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransportUnavailable),
            wait=wait_random_exponential(multiplier=0.5, max=settings.api_wait_max_seconds),
            before_sleep=waiting,
            reraise=True,
        ):
            with attempt:
                async with BatonClient(url, client.api_key, timeout=client.request_timeout) as api_client:
                    api = await api_client.read_worker_connection(
                        version=compat.baton_version(),
                        schema_version=compat.SCHEMA_VERSION,
                        min_schema_version=compat.MIN_SCHEMA_VERSION,
                    )
    except RequestRejected as exc:
        if exc.status == 409:  # the server's word on the versions
            raise IncompatibleServer(exc.detail) from None
        if exc.status == 404:
            raise IncompatibleServer(
                f"the server at {url} cannot tell a worker how to reach the broker (no "
                f"/api/workers/connection): it is older than this worker (baton "
                f"{compat.baton_version()}); run a worker of the server's version"
            ) from None
        raise
    refused = compat.refusal(  # a server that did not check
        client="worker",
        client_version=compat.baton_version(),
        client_schema=compat.SCHEMA_VERSION,
        client_min=compat.MIN_SCHEMA_VERSION,
        server_version=api.server_version,
        server_schema=api.schema_version,
        server_min=api.min_schema_version,
    )
    if refused is not None:
        raise IncompatibleServer(refused)
    return api


async def discover_queues(client: ClientSettings, settings: WorkerSettings) -> list[QueueSpec]:
    """The pool queues to read, by priority: the pool's (created with its queues if the settings
    say so), or with no API the named ones in the order given. None while the pool is paused."""
    pool, wanted = settings.pool, settings.queues
    if not client.api_url:
        names = wanted or ["default"]
        return [QueueSpec(i + 1, pool_queue_name(pool, name)) for i, name in enumerate(names)]
    async with BatonClient(client.api_url, client.api_key) as api:
        try:
            record = await api.read_work_pool(pool)
        except RequestRejected as exc:
            if exc.status != 404 or not settings.create_pool:
                raise
            logger.info("Creating work pool %r (type process)", pool)
            try:
                record = await api.create_work_pool(
                    WorkPoolCreate(name=pool, type="process", base_job_template=default_process_template())
                )
            except RequestRejected as again:
                if again.status != 409:  # created meanwhile by another worker
                    raise
                record = await api.read_work_pool(pool)
        queues = await api.read_work_queues(pool)
        existing = {q.name for q in queues}
        for name in wanted:
            if name not in existing:
                logger.info("Creating work queue %r in pool %r", name, pool)
                with contextlib.suppress(RequestRejected):
                    queues.append(await api.create_work_queue(pool, WorkQueueCreate(name=name)))
    if record.paused:
        return []
    return [
        QueueSpec(q.priority, pool_queue_name(pool, q.name))
        for q in queues
        if not q.paused and (not wanted or q.name in wanted)
    ]
