"""Work pools, their queues (each with its RabbitMQ queue), and their workers."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from baton_schemas.compat import (
    MIN_SCHEMA_VERSION,
    SCHEMA_VERSION,
    WorkerConnection,
    baton_version,
    refusal,
)
from baton_schemas.limits import Name
from baton_schemas.pools import (
    Worker,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)

from ...broker.topology import declare_pool_queue, delete_pool_queue
from ...db import pools
from ..auth import ApiKey, Scope
from ..deps import CanDeploy, CanRead, Conn, Ctx, IsWorker, needs

router = APIRouter(tags=["work pools"])

# a worker learns its pool's queues; `baton deploy` reads what it changes
ReadsPools = Annotated[ApiKey | None, needs(Scope.READ, Scope.WORKER, Scope.DEPLOY)]
PoolName = Annotated[Name, Path()]
QueueName = Annotated[Name, Path()]


def _not_found(exc: pools.NotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.post("/work_pools", response_model=WorkPool, status_code=status.HTTP_201_CREATED)
async def create_pool(body: WorkPoolCreate, conn: Conn, ctx: Ctx, _: CanDeploy) -> WorkPool:
    try:
        pool = await pools.create_pool(conn, body)
    except pools.PoolExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await ctx.broker.run(partial(declare_pool_queue, pool=pool.name, queue=pools.DEFAULT_QUEUE))
    return pool


@router.get("/work_pools", response_model=list[WorkPool])
async def list_pools(conn: Conn, _: ReadsPools) -> list[WorkPool]:
    return await pools.list_pools(conn)


@router.get("/work_pools/{pool}", response_model=WorkPool)
async def read_pool(pool: PoolName, conn: Conn, _: ReadsPools) -> WorkPool:
    try:
        return await pools.get_pool(conn, pool)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc


@router.patch("/work_pools/{pool}", response_model=WorkPool)
async def update_pool(pool: PoolName, body: WorkPoolUpdate, conn: Conn, _: CanDeploy) -> WorkPool:
    try:
        return await pools.update_pool(conn, pool, body)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc


@router.delete("/work_pools/{pool}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pool(pool: PoolName, conn: Conn, ctx: Ctx, _: CanDeploy) -> Response:
    try:
        queues = await pools.delete_pool(conn, pool)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc
    for queue in queues:
        await ctx.broker.run(partial(delete_pool_queue, pool=pool, queue=queue))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/work_pools/{pool}/queues", response_model=list[WorkQueue])
async def list_queues(pool: PoolName, conn: Conn, _: ReadsPools) -> list[WorkQueue]:
    try:
        return await pools.list_queues(conn, pool)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc


@router.post("/work_pools/{pool}/queues", response_model=WorkQueue, status_code=status.HTTP_201_CREATED)
async def create_queue(
    pool: PoolName, body: WorkQueueCreate, conn: Conn, ctx: Ctx, _: CanDeploy
) -> WorkQueue:
    try:
        queue = await pools.create_queue(conn, pool, body)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc
    except pools.PoolExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await ctx.broker.run(partial(declare_pool_queue, pool=pool, queue=queue.name))
    return queue


@router.patch("/work_pools/{pool}/queues/{queue}", response_model=WorkQueue)
async def update_queue(
    pool: PoolName, queue: QueueName, body: WorkQueueUpdate, conn: Conn, _: CanDeploy
) -> WorkQueue:
    try:
        return await pools.update_queue(conn, pool, queue, body)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc


@router.delete("/work_pools/{pool}/queues/{queue}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_queue(pool: PoolName, queue: QueueName, conn: Conn, ctx: Ctx, _: CanDeploy) -> Response:
    try:
        await pools.delete_queue(conn, pool, queue)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc
    await ctx.broker.run(partial(delete_pool_queue, pool=pool, queue=queue))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/work_pools/{pool}/workers", response_model=list[Worker])
async def pool_workers(pool: PoolName, conn: Conn, _: CanRead) -> list[Worker]:
    try:
        await pools.get_pool(conn, pool)
    except pools.NotFound as exc:
        raise _not_found(exc) from exc
    return await pools.list_workers(conn, pool)


@router.get("/workers", response_model=list[Worker])
async def all_workers(conn: Conn, _: CanRead, pool: Annotated[Name | None, Query()] = None) -> list[Worker]:
    return await pools.list_workers(conn, pool)


@router.get(
    "/workers/connection",
    response_model=WorkerConnection,
    responses={409: {"description": "The worker's version and the server's do not work together."}},
)
async def worker_connection(
    ctx: Ctx,
    _: IsWorker,
    version: Annotated[str, Query(max_length=64, description="The worker's baton version.")] = "unknown",
    schema_version: Annotated[
        int | None, Query(ge=0, description="The envelope schema the worker writes.")
    ] = None,
    min_schema_version: Annotated[
        int | None, Query(ge=0, description="The oldest envelope schema the worker reads.")
    ] = None,
) -> WorkerConnection:
    """How a worker reaches the broker, and whether this server can serve it: a worker needs
    only the API's URL and a key with scope worker."""
    if schema_version is not None:
        refused = refusal(
            client="worker",
            client_version=version,
            client_schema=schema_version,
            client_min=schema_version if min_schema_version is None else min_schema_version,
            server_version=baton_version(),
            server_schema=SCHEMA_VERSION,
            server_min=MIN_SCHEMA_VERSION,
        )
        if refused is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refused)
    return WorkerConnection(
        broker_url=ctx.settings.worker_broker_url or ctx.settings.broker_url,
        installation_id=ctx.installation_id,
        server_version=baton_version(),
        schema_version=SCHEMA_VERSION,
        min_schema_version=MIN_SCHEMA_VERSION,
    )
