"""Firing an automation, exactly once: the firing's row (unique on its key), each action's
effect and the `baton.automation.triggered` (or `resolved`) event commit in the transaction
that counted the event, or not at all.

A second attempt at the same firing (a redelivered event, the other router, a restarted timer)
finds the key taken and does nothing. Each action's effect carries its index too: a run made
by action 1 of a firing has the idempotency key `trigger:{automation}:{firing key}:1`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from baton import _tracing
from baton_schemas.automations import ActionOutcome, FiringKind
from baton_schemas.events import MAX_RELATED, RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from baton_schemas.topology import EVENTS

from ..broker.outbox import Outbox, OutboxMessage, OutboxRow
from ..db.types import Connection
from ..events.templates import RenderLimits
from .actions import ActionContext, perform
from .compiled import CompiledAutomation
from .windows import Fire

_FLOW_RUN = "baton.flow-run."


@dataclass(frozen=True, slots=True)
class FiringSettings:
    limits: RenderLimits
    dispatch_within: float
    default_lease_seconds: float


@dataclass(slots=True)
class Fired:
    """What a batch's firings leave to do once committed."""

    outbox: list[OutboxRow] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    firings: int = 0
    outcomes: list[ActionOutcome] = field(default_factory=list)  # counted once committed


async def _flow_run(conn: Connection, event: dict[str, Any] | None) -> dict[str, Any] | None:
    if event is None:
        return None
    resource_id = str(event["resource"].get(RESOURCE_ID, ""))
    if not resource_id.startswith(_FLOW_RUN):
        return None
    try:
        run_id = uuid.UUID(resource_id[len(_FLOW_RUN) :])
    except ValueError:
        return None
    row = await conn.fetchrow(
        """SELECT fr.id, fr.name, fr.parameters, fr.tags, fr.state_type, fr.state_name,
                  fr.deployment_id, fr.work_pool_name, f.name AS flow_name
           FROM flow_runs fr JOIN flows f ON f.id = fr.flow_id WHERE fr.id = $1""",
        run_id,
    )
    if row is None:
        return None
    run = dict(row)
    return orjson.loads(orjson.dumps(run, default=str))  # type: ignore[no-any-return]


def _triggered_event(
    automation: CompiledAutomation,
    fire: Fire,
    firing_id: uuid.UUID,
    outcomes: list[ActionOutcome],
    now: datetime,
) -> OutboxMessage:
    event_id = uuid.uuid4()
    name = f"baton.automation.{fire.kind.value}"
    related = [
        {RESOURCE_ID: f"baton.event.{e['id']}", RESOURCE_ROLE: "triggering-event", "baton.event": e["event"]}
        for e in fire.events[:MAX_RELATED]
    ]
    fields = {
        "schema_version": 1,
        "id": event_id,
        "occurred": now,
        "received": now,
        "event": name,
        "resource": {
            RESOURCE_ID: f"baton.automation.{automation.id}",
            RESOURCE_NAME: automation.name,
            "baton.trigger.key": fire.key,
        },
        "related": related,
        "payload": {
            "firing_id": firing_id,
            "key": fire.key,
            "trigger_path": fire.path,
            "bucket_key": fire.bucket_key,
            "event_ids": [e["id"] for e in fire.events],
            "actions": [o.model_dump(mode="json") for o in outcomes],
        },
    }
    body = orjson.dumps(fields, option=orjson.OPT_UTC_Z, default=str)
    return OutboxMessage(EVENTS, name, event_id, body, True)


_CLAIM = """
    INSERT INTO firings (id, automation_id, automation_name, kind, key, trigger_path, bucket_key,
        event_ids)
    SELECT i, a, n, k, ky, p, b, e::uuid[]
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[]) AS t(i, a, n, k, ky, p, b, e)
    ORDER BY ky
    ON CONFLICT (key) DO NOTHING
    RETURNING id"""

_RECORD = """
    UPDATE firings f SET ok = t.ok, actions = t.actions::jsonb
    FROM unnest($1::uuid[], $2::bool[], $3::text[]) AS t(id, ok, actions)
    WHERE f.id = t.id"""

Root = tuple[CompiledAutomation, Fire]


async def _claim(conn: Connection, roots: list[Root]) -> list[tuple[CompiledAutomation, Fire, uuid.UUID]]:
    """One row per firing, in one statement; those whose key was taken before are left out."""
    unique = list({fire.key: (automation, fire) for automation, fire in reversed(roots)}.values())[::-1]
    ids = [uuid.uuid4() for _ in unique]
    taken = {
        r["id"]
        for r in await conn.fetch(
            _CLAIM,
            ids,
            [a.id for a, _ in unique],
            [a.name for a, _ in unique],
            [f.kind.value for _, f in unique],
            [f.key for _, f in unique],
            [f.path for _, f in unique],
            [f.bucket_key for _, f in unique],
            ["{" + ",".join(str(e["id"]) for e in f.events) + "}" for _, f in unique],
        )
    }
    return [(a, f, i) for (a, f), i in zip(unique, ids, strict=True) if i in taken]


def _overall(outcomes: list[ActionOutcome]) -> bool | None:
    """False if an action failed; None while one has yet to run (a webhook); else True."""
    if any(o.ok is False for o in outcomes):
        return False
    return None if any(o.ok is None for o in outcomes) else True


async def _perform(
    conn: Connection,
    automation: CompiledAutomation,
    fire: Fire,
    firing_id: uuid.UUID,
    settings: FiringSettings,
    now: datetime,
    into: Fired,
    deployments: dict[str, Any],
) -> list[ActionOutcome]:
    actions = (
        [*automation.actions_on_trigger, *automation.actions]
        if fire.kind is FiringKind.TRIGGERED
        else list(automation.actions_on_resolve)
    )
    context = {
        "event": fire.event,
        "events": list(fire.events),
        "automation": {"id": str(automation.id), "name": automation.name},
        "trigger": {"path": fire.path, "key": fire.bucket_key, "kind": fire.kind.value},
        "flow_run": await _flow_run(conn, fire.event),
    }
    firing = ActionContext(
        automation,
        fire,
        firing_id,
        context,
        now,
        settings.limits,
        settings.dispatch_within,
        settings.default_lease_seconds,
        deployments,
    )
    outcomes = []
    for index, action in enumerate(actions):
        done = await perform(conn, firing, index, action)
        outcomes.append(done.outcome)
        into.outbox += done.outbox
        if done.call is not None:
            into.calls.append(done.call)
    return outcomes


async def fire_all(
    conn: Connection,
    roots: list[Root],
    settings: FiringSettings,
    now: datetime,
    into: Fired,
    *,
    traced: Mapping[str, str] | None = None,
) -> None:
    """Record the firings and perform their actions, inside the caller's transaction: the
    firings' rows in one statement (a key taken before: that firing is not made again), each
    firing's actions in turn, then every outcome and `baton.automation.triggered` (or
    `resolved`) event in one statement each. `traced`: the trace of each causing event, which
    the runs a firing makes join."""
    if not roots:
        return
    deployments: dict[str, Any] = {}  # looked up once per batch
    records: list[tuple[uuid.UUID, bool | None, list[ActionOutcome]]] = []
    messages = []
    for automation, fire, firing_id in await _claim(conn, roots):
        parent = (traced or {}).get(fire.cause)
        if parent is None:
            outcomes = await _perform(conn, automation, fire, firing_id, settings, now, into, deployments)
        else:
            attributes = {"baton.automation.id": automation.id, "baton.automation.name": automation.name}
            with _tracing.span("fire automation", parent=parent, attributes=attributes):
                outcomes = await _perform(conn, automation, fire, firing_id, settings, now, into, deployments)
        records.append((firing_id, _overall(outcomes), outcomes))
        messages.append(_triggered_event(automation, fire, firing_id, outcomes, now))
        into.firings += 1
        into.outcomes += outcomes
    if not records:
        return
    await conn.execute(
        _RECORD,
        [r[0] for r in records],
        [r[1] for r in records],
        [orjson.dumps([o.model_dump(mode="json") for o in r[2]]).decode() for r in records],
    )
    into.outbox += await Outbox.add(conn, messages)
