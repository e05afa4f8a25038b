"""Flow runs: creation (with its first state and state-change message) and reads."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import asyncpg

from baton import _tracing
from baton_schemas.envelopes import RunKind, StateChange
from baton_schemas.flows import FlowCreate
from baton_schemas.names import run_name
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import Scheduled, State, StateType

from ..broker.messages import state_change_message
from ..broker.outbox import OutboxRow
from ..events.state_events import flow_run_event
from .flows import FlowCache, get_or_create_flow
from .rows import FLOW_RUN_COLUMNS, flow_run_from_row
from .run_cache import RunCache
from .types import Connection

INITIAL_TYPES = frozenset({StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING})


class InvalidRun(ValueError):
    """A flow run that cannot be created as asked (unknown flow, bad initial state)."""

    status = 422


class IdempotencyConflict(InvalidRun):
    """The id or idempotency key belongs to a run of another target (another deployment, or
    another flow for an ad-hoc run): it is refused, never answered with that other run."""

    status = 409


def _target(deployment_id: uuid.UUID | None, flow_id: uuid.UUID, flow_name: str) -> str:
    return f"deployment {deployment_id}" if deployment_id else f"flow {flow_name!r} (ad hoc)"


def _check_target(existing: FlowRun, create: FlowRunCreate, flow: Mapping[str, Any]) -> None:
    """A key (or id) answers with its run only when asked for the same target: the run's
    deployment, or for an ad-hoc run its flow."""
    same = (
        existing.deployment_id == create.deployment_id
        if create.deployment_id is not None or existing.deployment_id is not None
        else existing.flow_id == flow["id"]
    )
    if same:
        return
    what = f"idempotency key {create.idempotency_key!r}" if existing.id != create.id else f"id {create.id}"
    raise IdempotencyConflict(
        f"{what} belongs to flow run {existing.id} of "
        f"{_target(existing.deployment_id, existing.flow_id, existing.flow_name)}, not of "
        f"{_target(create.deployment_id, flow['id'], flow['name'])}: a key belongs to what it "
        "created; use another one for this"
    )


async def read_flow_run(conn: Connection, run_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    lock_clause = "FOR UPDATE OF fr" if lock else ""
    return await conn.fetchrow(
        f"""SELECT {FLOW_RUN_COLUMNS} FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
            WHERE fr.id = $1 {lock_clause}""",
        run_id,
    )


async def get_flow_run(conn: Connection, run_id: uuid.UUID) -> FlowRun | None:
    row = await read_flow_run(conn, run_id)
    return flow_run_from_row(row) if row else None


async def _existing(conn: Connection, create: FlowRunCreate) -> FlowRun | None:
    if create.id is not None and (run := await get_flow_run(conn, create.id)):
        return run
    if create.idempotency_key is not None:
        row = await conn.fetchrow(
            f"""SELECT {FLOW_RUN_COLUMNS} FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
                WHERE fr.idempotency_key = $1""",
            create.idempotency_key,
        )
        if row:
            return flow_run_from_row(row)
    return None


_CREATE = """
    WITH run AS (
        INSERT INTO flow_runs (id, name, flow_id, deployment_id, parent_task_run_id,
            parent_flow_run_id, parameters, tags, idempotency_key, state, state_type, state_name,
            state_version, next_scheduled_time, expected_start_time, retries, retry_delay_seconds,
            work_pool_name, work_queue_name, job_variables, start_time, run_count, traceparent)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $30)
        ON CONFLICT DO NOTHING
        RETURNING *
    ), history AS (
        INSERT INTO states (id, flow_run_id, verdict, version, type, name, timestamp, state)
        SELECT $22, id, 'ACCEPT', 1, state_type, state_name, $23, state FROM run
    ), message AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory, ordering_key)
        SELECT $24, $25, $22, $26, false, id FROM run
        RETURNING id
    ), event AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT $27, $28, $22, $29, true FROM run
        RETURNING id
    )
    SELECT run.*, (SELECT id FROM message) AS outbox_id, (SELECT id FROM event) AS event_outbox_id
    FROM run"""


async def _flow_for(conn: Connection, create: FlowRunCreate, flows: FlowCache | None) -> Mapping[str, Any]:
    key = create.flow_id if create.flow_id is not None else create.flow_name
    if flows is not None and key is not None and (cached := flows.get(key)) is not None:
        return cached
    row: asyncpg.Record | None  # the pool's connection proxy is typed loosely
    if create.flow_id is not None:
        row = await conn.fetchrow("SELECT id, name, slug FROM flows WHERE id = $1", create.flow_id)
        if row is None:
            raise InvalidRun(f"flow {create.flow_id} does not exist")
    elif not create.flow_name:
        raise InvalidRun("give flow_id or flow_name")
    else:
        row = await conn.fetchrow("SELECT id, name, slug FROM flows WHERE name = $1", create.flow_name)
        if row is None:
            flow = await get_or_create_flow(conn, FlowCreate(name=create.flow_name))
            row = await conn.fetchrow("SELECT id, name, slug FROM flows WHERE id = $1", flow.id)
            assert row is not None
    if flows is not None:
        flows.put(row)
    return cast(Mapping[str, Any], row)


async def create_flow_run(
    conn: Connection,
    create: FlowRunCreate,
    *,
    cache: RunCache | None = None,
    flows: FlowCache | None = None,
) -> tuple[FlowRun, list[OutboxRow], bool]:
    """Create a run (or return the one with the same id / idempotency key).

    Returns the run, the outbox rows to send after commit, and whether it was created. The run,
    its first state and its state-change message are written by one statement, atomically.
    A created run goes into `cache`: its first transition need not read it back. Its flow is
    looked up in `flows` first (only outside a transaction: a flow deleted since fails the
    insert, which is then tried again with the flow read afresh).
    """
    state = create.state or Scheduled()
    if state.type not in INITIAL_TYPES:
        raise InvalidRun(f"a flow run cannot start in state {state.type.value}")
    flow = await _flow_for(conn, create, flows)
    try:
        return await _insert(conn, create, state, flow, cache)
    except asyncpg.ForeignKeyViolationError:
        if flows is None or conn.is_in_transaction():
            raise
        flows.forget(flow)
        return await _insert(conn, create, state, await _flow_for(conn, create, flows), cache)


async def _insert(
    conn: Connection, create: FlowRunCreate, state: State, flow: Mapping[str, Any], cache: RunCache | None
) -> tuple[FlowRun, list[OutboxRow], bool]:
    run_id = create.id or uuid.uuid4()
    name = create.name or run_name()
    change = StateChange(
        id=state.id,
        run_kind=RunKind.FLOW_RUN,
        run_id=run_id,
        run_name=name,
        flow_run_id=run_id,
        flow_id=flow["id"],
        flow_name=flow["name"],
        flow_slug=flow["slug"],
        deployment_id=create.deployment_id,
        state=state,
        state_version=1,
        tags=create.tags,
        occurred=state.timestamp,
    )
    message = state_change_message(change)
    event = flow_run_event(
        {
            "id": run_id,
            "name": name,
            "flow_id": flow["id"],
            "flow_name": flow["name"],
            "deployment_id": create.deployment_id,
            "work_pool_name": create.work_pool_name,
            "work_queue_name": create.work_queue_name,
            "parent_flow_run_id": create.parent_flow_run_id,
            "parent_task_run_id": create.parent_task_run_id,
            "tags": create.tags,
        },
        state,
        version=1,
        previous=None,
    )
    scheduled = state.scheduled_time if state.type is StateType.SCHEDULED else None
    running = state.type is StateType.RUNNING
    row = await conn.fetchrow(
        _CREATE,
        run_id,
        name,
        flow["id"],
        create.deployment_id,
        create.parent_task_run_id,
        create.parent_flow_run_id,
        create.parameters,
        create.tags,
        create.idempotency_key,
        state.model_dump(mode="json"),
        state.type.value,
        state.name,
        scheduled,
        scheduled or state.timestamp,
        create.retry_policy.retries,
        create.retry_policy.retry_delay_seconds,
        create.work_pool_name,
        create.work_queue_name,
        create.job_variables,
        state.timestamp if running else None,
        1 if running else 0,
        state.id,
        state.timestamp,
        message.exchange,
        message.routing_key,
        message.body,
        event.exchange,
        event.routing_key,
        event.body,
        _tracing.current(),  # the trace of whoever creates it (a request, a firing), if traced
    )
    if row is None:  # the id or idempotency key exists already
        existing = await _existing(conn, create)
        if existing is None:
            raise InvalidRun("a flow run with this id or idempotency key is being created")
        _check_target(existing, create, flow)
        return existing, [], False
    written = {**row, "flow_name": flow["name"], "flow_slug": flow["slug"], "replay": None}
    if cache is not None:
        cache.put(run_id, written)
    rows = [OutboxRow(row["outbox_id"], message), OutboxRow(row["event_outbox_id"], event)]
    return flow_run_from_row(written), rows, True


async def insert_state(
    conn: Connection,
    state: State,
    *,
    version: int,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    transition_id: uuid.UUID | None = None,
    verdict: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO states (id, flow_run_id, task_run_id, transition_id, verdict, version,
               type, name, timestamp, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        state.id,
        flow_run_id,
        task_run_id,
        transition_id,
        verdict,
        version,
        state.type.value,
        state.name,
        state.timestamp,
        state.model_dump(mode="json"),
    )


def encode_cursor(created: datetime, run_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{run_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(run_id)
    except Exception as exc:
        raise ValueError("cursor is not one this API returned") from exc


def id_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The lowest and highest ids that start with these hex digits; ValueError if not hex."""
    digits = prefix.replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"id prefix {prefix!r}: expected 1 to 32 hex digits")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


async def list_flow_runs(
    conn: Connection,
    *,
    states: list[StateType] | None = None,
    flow_name: str | None = None,
    deployment_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    name: str | None = None,
    id_prefix: str | None = None,
) -> tuple[list[FlowRun], str | None]:
    """Newest first, keyset-paginated on (created, id). `id_prefix`: the first hex digits of
    the id (dashes allowed), looked up as a range of the primary key."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if states:
        where.append(f"fr.state_type = ANY({arg([s.value for s in states])}::text[])")
    if flow_name:
        where.append(f"f.name = {arg(flow_name)}")
    if deployment_id:
        where.append(f"fr.deployment_id = {arg(deployment_id)}")
    if tags:
        where.append(f"fr.tags @> {arg(tags)}::text[]")
    if name:
        where.append(f"fr.name = {arg(name)}")
    if id_prefix is not None:
        low, high = id_range(id_prefix)
        where.append(f"fr.id BETWEEN {arg(low)} AND {arg(high)}")
    if since:
        where.append(f"fr.created >= {arg(since)}")
    if until:
        where.append(f"fr.created < {arg(until)}")
    if cursor:
        created, run_id = decode_cursor(cursor)
        where.append(f"(fr.created, fr.id) < ({arg(created)}, {arg(run_id)})")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await conn.fetch(
        f"""SELECT {FLOW_RUN_COLUMNS} FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id
            {clause} ORDER BY fr.created DESC, fr.id DESC LIMIT {arg(limit + 1)}""",
        *args,
    )
    runs = [flow_run_from_row(r) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1]["created"], rows[limit - 1]["id"]) if len(rows) > limit else None
    )
    return runs, next_cursor
