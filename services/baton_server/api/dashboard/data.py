"""`/api/ui/...`: the read models the dashboard's pages need beyond the REST API, behind the
same key gate and scope checks as every other route (a `read` key reads them; replaying or
dropping a dead letter needs `admin`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from baton_schemas import utcnow
from baton_schemas.limits import Name, Tag
from baton_schemas.slots import jitter_offset, next_slots
from baton_schemas.states import StateType

from ...db import deployments as deployments_db
from ...db import pools as pools_db
from ...db import schedules as schedules_db
from ...db.flow_runs import get_flow_run
from ...db.pools import NotFound
from ...events.store import event_json
from ..auth import Scope, scope_list
from ..deps import CanRead, Conn, Ctx, IsAdmin
from ..gate import KEY_STATE
from ..session import csrf_token, session_secret
from . import queries

router = APIRouter(prefix="/api/ui", tags=["dashboard"])

MAX_HISTOGRAM_DAYS = 90


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value, default=str), media_type="application/json")  # asyncpg UUIDs


@router.get("/session")
async def session(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Who the page is signed in as, what its key may do, and the token its changes carry."""
    if not ctx.settings.auth_required:
        return {"auth": False, "name": None, "scopes": scope_list(Scope), "csrf": None}
    key = getattr(request.state, KEY_STATE)
    secret = session_secret(request.scope) if "authorization" not in request.headers else None
    scopes = scope_list(Scope) if Scope.ADMIN in key.scopes else scope_list(key.scopes)
    return {"auth": True, "name": key.name, "scopes": scopes, "csrf": csrf_token(secret) if secret else None}


@router.get("/runs/histogram")
async def runs_histogram(
    conn: Conn,
    _: CanRead,
    since: datetime | None = None,
    until: datetime | None = None,
    buckets: Annotated[int, Query(ge=1, le=200)] = 48,
    state: Annotated[list[StateType] | None, Query()] = None,
    flow_name: Annotated[Name | None, Query()] = None,
    deployment_id: UUID | None = None,
    tag: Annotated[list[Tag] | None, Query()] = None,
) -> Response:
    """Runs created per time bucket, by state type (the last 24 hours unless told)."""
    until = until or utcnow()
    since = since or until - timedelta(hours=24)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give since and until with their offset")
    if not since < until or until - since > timedelta(days=MAX_HISTOGRAM_DAYS):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"since must be before until, at most {MAX_HISTOGRAM_DAYS} days apart",
        )
    wanted = queries.RunFilter(states=state, flow_name=flow_name, deployment_id=deployment_id, tags=tag)
    return _json(await queries.histogram(conn, wanted, since, until, buckets))


@router.get("/flow_runs/{run_id}/graph")
async def run_graph(run_id: UUID, conn: Conn, _: CanRead) -> Response:
    """The run's task runs (with the inputs that link them), its child runs, and its parent."""
    run = await get_flow_run(conn, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"flow run {run_id} does not exist")
    graph = await queries.run_graph(conn, run_id)
    parent = None
    if run.parent_flow_run_id is not None:
        found = await get_flow_run(conn, run.parent_flow_run_id)
        if found is not None:
            parent = {"id": found.id, "name": found.name, "flow_name": found.flow_name, "state": found.state}
    return _json({**graph, "parent": parent})


@router.get("/deployments")
async def deployment_overview(conn: Conn, _: CanRead) -> Response:
    """Every deployment with its schedules' next times, its triggers and its Late count."""
    found = await deployments_db.list_deployments(conn, None)
    summaries = await queries.deployment_summaries(conn, [d.id for d in found])
    now = utcnow()
    items = []
    for deployment in found:
        schedules = await schedules_db.read_schedules(conn, deployment.id)
        items.append(
            {
                **deployment.model_dump(mode="json"),
                **summaries[deployment.id],
                "schedules": [
                    {
                        **item.model_dump(mode="json"),
                        "next": [
                            slot + jitter_offset(item, slot) for slot in next_slots(item.schedule, now, 3)
                        ]
                        if item.active
                        else [],
                    }
                    for item in schedules
                ],
            }
        )
    return _json(items)


@router.get("/work_pools")
async def pool_overview(conn: Conn, _: CanRead) -> Response:
    """Pools with their queues, workers, slots in use and runs waiting."""
    load = await queries.pool_load(conn)
    workers = await pools_db.list_workers(conn)
    answer = []
    for pool in await pools_db.list_pools(conn):
        try:
            queues = await pools_db.list_queues(conn, pool.name)
        except NotFound:  # deleted meanwhile
            continue
        counts = load.get(pool.name, {})
        answer.append(
            {
                **pool.model_dump(mode="json", exclude={"base_job_template"}),
                "running": sum(q["running"] for q in counts.values()),
                "queues": [
                    {
                        **q.model_dump(mode="json"),
                        **counts.get(q.name, {"running": 0, "waiting": 0}),
                    }
                    for q in queues
                ],
                "workers": [w.model_dump(mode="json") for w in workers if w.pool_name == pool.name],
            }
        )
    return _json(answer)


@router.get("/events/{event_id}")
async def event_detail(event_id: UUID, occurred: datetime, conn: Conn, _: CanRead) -> Response:
    """One stored event (by its id and when it occurred, the store's key) and what it fired."""
    found = await queries.event_with_firings(conn, event_id, occurred)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {event_id} occurred at {occurred}")
    row, fired = found
    return _json({"event": event_json(row), "firings": fired})


# --- dead letters ------------------------------------------------------------------------------


class DeadLetterChoice(BaseModel):
    message_ids: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=1000)


@router.get("/dead_letters")
async def dead_letters(ctx: Ctx, _: CanRead, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """What is parked in `baton.dead`, oldest first, with the reason each was parked."""
    from baton._dead_letters import DeadLetterError, list_dead_letters

    try:
        letters = await list_dead_letters(ctx.settings.broker_url, limit=limit)
    except DeadLetterError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return _json(
        [
            {
                "message_id": d.message_id,
                "kind": d.kind,
                "reason": d.reason,
                "exchange": d.exchange,
                "routing_key": d.routing_key,
                "queue": d.queue,
                "parked": d.parked,
                "body": d.body.decode(errors="replace"),
            }
            for d in letters
        ]
    )


@router.post("/dead_letters/replay")
async def replay(body: DeadLetterChoice, ctx: Ctx, _: IsAdmin) -> dict[str, Any]:
    from baton._dead_letters import DeadLetterError, replay_dead_letters

    try:
        outcome = await replay_dead_letters(ctx.settings.broker_url, set(body.message_ids))
    except DeadLetterError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return {"done": outcome.done, "failed": outcome.failed}


@router.post("/dead_letters/drop")
async def drop(body: DeadLetterChoice, ctx: Ctx, _: IsAdmin) -> dict[str, Any]:
    from baton._dead_letters import DeadLetterError, drop_dead_letters

    try:
        outcome = await drop_dead_letters(ctx.settings.broker_url, set(body.message_ids))
    except DeadLetterError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return {"done": outcome.done, "failed": outcome.failed}
