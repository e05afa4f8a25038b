"""Runs made ahead of time: every active schedule keeps a horizon of future runs.

A schedule has at least `min_runs` future runs and runs up to `min_ahead` ahead, never more than
`max_runs` (or its own `max_scheduled_runs`) nor past `max_ahead`. Each run carries the
idempotency key `schedule:{schedule id}:{slot}`, and schedules are taken with SKIP LOCKED, so
restarts and any number of scheduler replicas make each slot once. Runs are inserted in batches:
one statement writes a batch's runs, their first states and their state-change messages.

After an outage, the slots missed since the last one made are made too, back to the catch-up
window at most: the catch-up policy then decides which of them run (`catchup.py`).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson

from baton_schemas import utcnow
from baton_schemas.names import run_name
from baton_schemas.schedules import DeploymentSchedule
from baton_schemas.slots import iter_slots, jitter_offset
from baton_schemas.states import Scheduled

from ..broker.messages import flow_run_change_message, serialise_state
from ..broker.outbox import OutboxRow
from ..db.types import Connection
from ..events.state_events import flow_run_event
from ..metrics import SCHEDULED_RUNS
from .policy import fingerprint, resolve_policy, schedule_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Horizon:
    min_runs: int = 3
    min_ahead: timedelta = timedelta(hours=1)
    max_runs: int = 100
    max_ahead: timedelta = timedelta(days=100)


def _slots_of(entry: DeploymentSchedule, after: datetime) -> Iterator[datetime]:
    return iter_slots(entry.schedule, after)


@dataclass(frozen=True, slots=True)
class Plan:
    slots: list[datetime]  # to make, oldest first (past ones only after an outage)
    filled_until: datetime | None  # the last slot made, afterwards
    next_fill: datetime | None  # when the schedule needs more (None: it has no future slot)


def plan_slots(
    slots_after: Any,
    *,
    now: datetime,
    filled_until: datetime | None,
    catchup_window: timedelta,
    horizon: Horizon,
    cap: int | None = None,
) -> Plan:
    """Which slots to make now (pure). `slots_after(t)` iterates a schedule's slots after t."""
    max_runs = min(horizon.max_runs, cap) if cap else horizon.max_runs
    made_ahead = 0
    first_future: datetime | None = None  # after it passes, the schedule needs more
    if filled_until is not None and filled_until > now:
        for slot in slots_after(now):
            first_future = first_future or slot
            if slot > filled_until or made_ahead >= max_runs:
                break
            made_ahead += 1
        start = filled_until
    else:
        start = now if filled_until is None else max(filled_until, now - catchup_window)
    missed: deque[datetime] = deque(maxlen=horizon.max_runs)  # the latest ones, if more
    new: list[datetime] = []
    future = made_ahead
    for slot in slots_after(start):
        if slot <= now:  # missed while no scheduler ran
            missed.append(slot)
            continue
        first_future = first_future or slot
        enough = future >= horizon.min_runs and slot > now + horizon.min_ahead
        if enough or future >= max_runs or slot > now + horizon.max_ahead:
            break
        new.append(slot)
        future += 1
    new[:0] = missed
    until = new[-1] if new else filled_until
    return Plan(new, until, first_future)


def idempotency_key(schedule: str, slot: datetime) -> str:
    return f"schedule:{schedule}:{slot.isoformat()}"


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to make for a slot of a schedule."""

    schedule_id: str
    slot: datetime
    scheduled_time: datetime
    parameters: dict[str, Any]
    deployment: Mapping[str, Any]  # the deployment's row, with its flow's name and slug
    auto: bool = True


_INSERT = """
    WITH input AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::jsonb[], $6::jsonb[],
            $7::text[], $8::jsonb[], $9::timestamptz[], $10::integer[], $11::float8[], $12::text[],
            $13::text[], $14::text[], $15::timestamptz[], $16::uuid[], $17::timestamptz[],
            $18::text[], $19::bytea[], $20::text[], $21::bytea[], $22::boolean[])
            AS t(id, name, flow_id, deployment_id, parameters, tags, idempotency_key, state,
                 scheduled, retries, retry_delay, pool, queue, schedule_id, slot, state_id,
                 state_time, routing_key, body, event_key, event_body, auto)
    ), run AS (
        INSERT INTO flow_runs (id, name, flow_id, deployment_id, parameters, tags, idempotency_key,
            state, state_type, state_name, state_version, next_scheduled_time, expected_start_time,
            retries, retry_delay_seconds, work_pool_name, work_queue_name, schedule_id,
            schedule_slot, auto_scheduled)
        SELECT id, name, flow_id, deployment_id, parameters,
            ARRAY(SELECT jsonb_array_elements_text(tags)), idempotency_key, state, 'SCHEDULED',
            'Scheduled', 1, scheduled, scheduled, retries, retry_delay, pool, queue, schedule_id,
            slot, auto
        FROM input ORDER BY idempotency_key
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    ), history AS (
        INSERT INTO states (id, flow_run_id, verdict, version, type, name, timestamp, state)
        SELECT i.state_id, i.id, 'ACCEPT', 1, 'SCHEDULED', 'Scheduled', i.state_time, i.state
        FROM input i JOIN run USING (id)
    ), message AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory, ordering_key)
        SELECT $23, i.routing_key, i.state_id, i.body, false, i.id FROM input i JOIN run USING (id)
        RETURNING id, ordering_key
    ), event AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
        SELECT $24, i.event_key, i.state_id, i.event_body, true FROM input i JOIN run USING (id)
        RETURNING id, message_id
    )
    SELECT (SELECT array_agg(ARRAY[id::text, ordering_key::text]) FROM message) AS messages,
           (SELECT array_agg(ARRAY[id::text, message_id::text]) FROM event) AS events"""


async def insert_runs(conn: Connection, runs: Iterable[NewRun]) -> tuple[int, list[OutboxRow]]:
    """Make these runs, skipping slots made already; the number made and the outbox rows to send.
    One statement: the runs, their first states and their messages (state change, event)."""
    columns: list[list[Any]] = [[] for _ in range(22)]
    messages: dict[uuid.UUID, tuple[Any, Any]] = {}
    exchanges: tuple[str, str] | None = None
    for new in runs:
        d = new.deployment
        run_id = uuid.uuid4()
        name = run_name()
        key = idempotency_key(new.schedule_id, new.slot)
        state = Scheduled(new.scheduled_time)
        state_json = serialise_state(state)
        row = {
            "id": run_id,
            "name": name,
            "flow_id": d["flow_id"],
            "flow_name": d["flow_name"],
            "flow_slug": d["flow_slug"],
            "deployment_id": d["id"],
            "tags": d["tags"],
            "work_pool_name": d["work_pool_name"],
            "work_queue_name": d["work_queue_name"],
            "parent_flow_run_id": None,
            "parent_task_run_id": None,
        }
        message = flow_run_change_message(row, state, state_json, version=1, previous=None)
        event = flow_run_event(row, state, version=1, previous=None)
        exchanges = (message.exchange, event.exchange)
        messages[state.id] = (message, event)
        for column, value in zip(
            columns,
            (
                run_id,
                name,
                d["flow_id"],
                d["id"],
                new.parameters,
                orjson.Fragment(orjson.dumps(list(d["tags"]))),  # one jsonb, not a nested array
                key,
                orjson.Fragment(state_json),
                new.scheduled_time,
                d["retries"],
                d["retry_delay_seconds"],
                d["work_pool_name"],
                d["work_queue_name"],
                new.schedule_id,
                new.slot,
                state.id,
                state.timestamp,
                message.routing_key,
                message.body,
                event.routing_key,
                event.body,
                new.auto,
            ),
            strict=True,
        ):
            column.append(value)
    if exchanges is None:
        return 0, []
    written = await conn.fetchrow(_INSERT, *columns, *exchanges)
    assert written is not None
    state_of_run = dict(zip(columns[0], columns[15], strict=True))
    out: list[OutboxRow] = []
    for outbox_id, run_id in written["messages"] or []:
        out.append(OutboxRow(int(outbox_id), messages[state_of_run[uuid.UUID(run_id)]][0]))
    for outbox_id, message_id in written["events"] or []:
        out.append(OutboxRow(int(outbox_id), messages[uuid.UUID(message_id)][1]))
    made = len(written["messages"] or [])
    SCHEDULED_RUNS.inc(made)
    return made, out


_DUE = """
    SELECT s.schedule_id, s.filled_until, s.fingerprint, d.id, d.name, d.flow_id,
           f.name AS flow_name, f.slug AS flow_slug, d.parameters, d.tags, d.work_pool_name,
           d.work_queue_name, d.retries, d.retry_delay_seconds, d.schedules, d.schedule_policy
    FROM schedule_states s
    JOIN deployments d ON d.id = s.deployment_id AND NOT d.paused
    JOIN flows f ON f.id = d.flow_id
    WHERE s.next_fill <= $1
    ORDER BY s.next_fill
    LIMIT $2
    FOR UPDATE OF s SKIP LOCKED"""

_FILLED = """
    UPDATE schedule_states s SET filled_until = u.filled_until, next_fill = u.next_fill, updated = now()
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(schedule_id, filled_until, next_fill)
    WHERE s.schedule_id = u.schedule_id"""


def schedules_of(deployment: Mapping[str, Any]) -> dict[str, tuple[int, Mapping[str, Any]]]:
    """A deployment's stored schedules by id, with their place in its list."""
    return {
        schedule_id(deployment["id"], i, entry): (i, entry) for i, entry in enumerate(deployment["schedules"])
    }


_PARSED: dict[str, DeploymentSchedule] = {}  # least recently used first
_PARSED_MAX = 1_000


def _parsed(key: str, entry: Mapping[str, Any]) -> DeploymentSchedule:
    """A stored schedule as its model, parsed once per fingerprint while it is among the most
    recently used (about 40 us to parse). The bound is memory: every model held costs about
    2 KB, scattered through the heap a fill grows; 10,000 of them kept the scheduler's RSS 20 MB
    higher for good, for 5% of a first fill's CPU."""
    found = _PARSED.pop(key, None)
    if found is None:
        if len(_PARSED) >= _PARSED_MAX:
            del _PARSED[next(iter(_PARSED))]
        found = DeploymentSchedule.model_validate(entry)
    _PARSED[key] = found
    return found


@dataclass
class FillResult:
    schedules: int = 0
    created: int = 0


async def fill_due(
    conn: Connection, horizon: Horizon, *, schedules: int = 200, batch_runs: int = 1000
) -> tuple[FillResult, list[OutboxRow]]:
    """Top up the schedules whose horizon ran short (up to `schedules` of them) in the caller's
    transaction."""
    now = utcnow()
    rows = await conn.fetch(_DUE, now, schedules)
    result = FillResult(schedules=len(rows))
    pending: list[NewRun] = []
    out: list[OutboxRow] = []
    updates: tuple[list[str], list[datetime | None], list[datetime | None]] = ([], [], [])
    changed: list[uuid.UUID] = []
    for row in rows:
        found = schedules_of(row).get(row["schedule_id"])
        if found is None or fingerprint(found[1], row) != row["fingerprint"]:
            # changed since it was reconciled: it waits (next_fill unset) for the reconciliation
            # of that change, which fills it afresh
            changed.append(row["id"])
            updates[0].append(row["schedule_id"])
            updates[1].append(row["filled_until"])
            updates[2].append(None)
            continue
        try:
            entry = _parsed(row["fingerprint"], found[1])
            policy = resolve_policy(row["schedule_policy"], found[1])
            plan = plan_slots(
                partial(_slots_of, entry),
                now=now,
                filled_until=row["filled_until"],
                catchup_window=policy.catchup_window,
                horizon=horizon,
                cap=entry.max_scheduled_runs,
            )
            parameters = {**row["parameters"], **entry.parameters}
        except Exception as exc:  # one bad schedule must not stop the others
            log.error(
                "schedule %s of deployment %s cannot be planned: %s", row["schedule_id"], row["id"], exc
            )
            plan, parameters = Plan([], row["filled_until"], None), {}
        for slot in plan.slots:
            when = slot + jitter_offset(entry, slot)
            pending.append(NewRun(row["schedule_id"], slot, when, parameters, row))
        updates[0].append(row["schedule_id"])
        updates[1].append(plan.filled_until)
        updates[2].append(plan.next_fill)
        while len(pending) >= batch_runs:
            made, sent = await insert_runs(conn, pending[:batch_runs])
            del pending[:batch_runs]
            result.created += made
            out += sent
    for start in range(0, len(pending), batch_runs):
        made, sent = await insert_runs(conn, pending[start : start + batch_runs])
        result.created += made
        out += sent
    if updates[0]:
        await conn.execute(_FILLED, *updates)
    if changed:
        await conn.execute(
            """INSERT INTO schedule_changes (deployment_id) SELECT unnest($1::uuid[])
               ON CONFLICT (deployment_id) DO NOTHING""",
            changed,
        )
    return result, out
