"""Logs: batched ingest, filtered reads, and a server-sent-event stream that follows a run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from baton_schemas.envelopes import Logs
from baton_schemas.pages import LogPage
from baton_schemas.states import TERMINAL_TYPES

from ...db.rows import log_from_row
from ...events.stream import SHUTDOWN_FRAME
from ...tracker.ingest import store_logs
from ..audit import not_audited
from ..deps import CanRead, Conn, Ctx, DatabaseBusy, IsWorker, body_schema, raw_json_body

router = APIRouter(prefix="/logs", tags=["logs"])

_TERMINAL = frozenset(t.value for t in TERMINAL_TYPES)

_POLL_SECONDS = 0.25
# logs written just after a run's final state (the engine's "finished" line) still get streamed
_END_GRACE_SECONDS = 1.5
_KEEPALIVE_SECONDS = 15.0


@router.post("", status_code=status.HTTP_202_ACCEPTED, openapi_extra=body_schema(Logs))
@not_audited
async def ingest(conn: Conn, _: IsWorker, body: Annotated[Logs, raw_json_body(Logs)]) -> dict[str, int]:
    return {"stored": await store_logs(conn, body.logs)}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _page_cursor(row: Any) -> str:
    """`{microseconds since the epoch}-{seq}` of the last log of a page (ordered by time)."""
    micros = (row["timestamp"] - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{row['seq']}"


def _page_after(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    micros, sep, seq = cursor.partition("-")
    if not sep or not micros.lstrip("-").isdigit() or not seq.isdigit():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "cursor is not one this API returned")
    return _EPOCH + timedelta(microseconds=int(micros)), int(seq)


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "cursor is not one this API returned")
    return int(cursor)


@router.get("", response_model=LogPage)
async def read_logs(
    conn: Conn,
    _: CanRead,
    flow_run_id: UUID | None = None,
    task_run_id: UUID | None = None,
    min_level: Annotated[int, Query(ge=0, le=100)] = 0,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> LogPage:
    """Ordered by each record's own timestamp (then arrival), so a run's captured output comes
    before its final state line whatever order the batches arrived in."""
    after = _page_after(cursor)
    rows = await conn.fetch(
        """SELECT * FROM logs
           WHERE ($1::uuid IS NULL OR flow_run_id = $1) AND ($2::uuid IS NULL OR task_run_id = $2)
             AND level >= $3
             AND ($4::timestamptz IS NULL OR (timestamp, seq) > ($4::timestamptz, $5::bigint))
           ORDER BY timestamp, seq LIMIT $6""",
        flow_run_id,
        task_run_id,
        min_level,
        after[0] if after else None,
        after[1] if after else 0,
        limit,
    )
    next_cursor = _page_cursor(rows[-1]) if rows else cursor
    return LogPage(items=[log_from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/stream")
async def follow(
    request: Request, flow_run_id: UUID, ctx: Ctx, _: CanRead, cursor: str | None = None
) -> StreamingResponse:
    """Server-sent events: each `data:` line a LogRecord (`id:` its cursor); `event: end` once the
    run has ended, `event: shutdown` when the server stops (follow again, from the last id)."""
    start = _after(cursor)
    closing: asyncio.Event = request.app.state.closing

    async def events() -> AsyncIterator[bytes]:
        seq = start
        loop = asyncio.get_running_loop()
        ended_at: float | None = None
        quiet_since = loop.time()
        while True:
            if closing.is_set():
                yield SHUTDOWN_FRAME
                return
            try:
                conn = await ctx.api_pool.acquire(timeout=ctx.settings.db_acquire_timeout_seconds)
            except TimeoutError as exc:
                raise DatabaseBusy from exc
            try:
                rows = await conn.fetch(
                    "SELECT * FROM logs WHERE flow_run_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
                    flow_run_id,
                    seq,
                )
                state_type = await conn.fetchval(
                    "SELECT state_type FROM flow_runs WHERE id = $1", flow_run_id
                )
            finally:
                await ctx.api_pool.release(conn)
            for row in rows:
                seq = row["seq"]
                yield b"id: %d\ndata: %s\n\n" % (seq, log_from_row(row).to_json())
            if rows:
                quiet_since = loop.time()
                continue
            if state_type is None or state_type in _TERMINAL:
                ended_at = ended_at or loop.time()
                if loop.time() - ended_at >= _END_GRACE_SECONDS:
                    yield f"event: end\ndata: {state_type or 'unknown'}\n\n".encode()
                    return
            if loop.time() - quiet_since >= _KEEPALIVE_SECONDS:
                quiet_since = loop.time()
                yield b": keep-alive\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), _POLL_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream")
