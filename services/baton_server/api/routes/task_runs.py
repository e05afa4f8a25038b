"""Task runs: batched state ingest, reads."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from baton_schemas.envelopes import TaskRunStates
from baton_schemas.pages import TaskRunPage
from baton_schemas.runs import TaskRun
from baton_schemas.states import StateEntry

from ...db.flow_runs import decode_cursor, encode_cursor
from ...db.rows import task_run_from_row
from ...tracker.ingest import store_task_run_states
from ..audit import not_audited
from ..deps import CanRead, Conn, Ctx, IsWorker, body_schema, raw_json_body

router = APIRouter(prefix="/task_runs", tags=["task runs"])


@router.post("/states", status_code=status.HTTP_202_ACCEPTED, openapi_extra=body_schema(TaskRunStates))
@not_audited
async def report_states(
    conn: Conn, ctx: Ctx, _: IsWorker, body: Annotated[TaskRunStates, raw_json_body(TaskRunStates)]
) -> dict[str, int]:
    rows = await store_task_run_states(conn, body.reports, events=ctx.settings.events_task_run_states)
    ctx.outbox.sent_after_commit(rows)
    return {"stored": len(rows)}


@router.get("", response_model=TaskRunPage)
async def list_task_runs(
    flow_run_id: UUID,
    conn: Conn,
    _: CanRead,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TaskRunPage:
    where = "flow_run_id = $1"
    args: list[Any] = [flow_run_id]
    if cursor:
        try:
            created, last_id = decode_cursor(cursor)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        where += " AND (created, id) > ($2, $3)"
        args += [created, last_id]
    rows = await conn.fetch(
        f"SELECT * FROM task_runs WHERE {where} ORDER BY created, id LIMIT {limit + 1}", *args
    )
    items = [task_run_from_row(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last["created"], last["id"]) if last else None
    return TaskRunPage(items=items, next_cursor=next_cursor)


@router.get("/{task_run_id}", response_model=TaskRun)
async def read(task_run_id: UUID, conn: Conn, _: CanRead) -> TaskRun:
    row = await conn.fetchrow("SELECT * FROM task_runs WHERE id = $1", task_run_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task run {task_run_id} does not exist")
    return task_run_from_row(row)


@router.get("/{task_run_id}/states", response_model=list[StateEntry])
async def history(task_run_id: UUID, conn: Conn, _: CanRead) -> list[StateEntry]:
    rows = await conn.fetch(
        "SELECT version, state FROM states WHERE task_run_id = $1 ORDER BY version, timestamp",
        task_run_id,
    )
    return [StateEntry.model_validate({**r["state"], "version": r["version"]}) for r in rows]
