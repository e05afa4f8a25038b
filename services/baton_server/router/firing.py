"""Firing an automation, exactly once: the firing's row (unique on its key), each action's
effect and the `baton.automation.triggered` (or `resolved`) event commit in the transaction
that counted the event, or not at all.

A second attempt at the same firing (a redelivered event, the other router, a restarted timer)
finds the key taken and does nothing. Each action's effect carries its index too: a run made
by action 1 of a firing has the idempotency key `trigger:{automation}:{firing key}:1`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

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


async def fire_automation(
    conn: Connection,
    automation: CompiledAutomation,
    fire: Fire,
    settings: FiringSettings,
    now: datetime,
    into: Fired,
) -> None:
    """Record the firing and perform its actions, inside the caller's transaction."""
    firing_id = uuid.uuid4()
    taken = await conn.fetchval(
        """INSERT INTO firings (id, automation_id, automation_name, kind, key, trigger_path,
               bucket_key, event_ids)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::uuid[])
           ON CONFLICT (key) DO NOTHING RETURNING id""",
        firing_id,
        automation.id,
        automation.name,
        fire.kind.value,
        fire.key,
        fire.path,
        fire.bucket_key,
        [str(e["id"]) for e in fire.events],
    )
    if taken is None:
        return  # fired before: nothing more
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
    )
    outcomes = []
    for index, action in enumerate(actions):
        done = await perform(conn, firing, index, action)
        outcomes.append(done.outcome)
        into.outbox += done.outbox
        if done.call is not None:
            into.calls.append(done.call)
    ok = (
        None
        if any(o.ok is None for o in outcomes) and all(o.ok is not False for o in outcomes)
        else all(o.ok is not False for o in outcomes)
    )
    await conn.execute(
        "UPDATE firings SET ok = $2, actions = $3 WHERE id = $1",
        firing_id,
        ok,
        [o.model_dump(mode="json") for o in outcomes],
    )
    into.outbox += await Outbox.add(conn, [_triggered_event(automation, fire, firing_id, outcomes, now)])
    into.firings += 1
    into.outcomes += outcomes
