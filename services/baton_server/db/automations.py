"""Automations: create, change, read, delete; a deployment's triggers as automations; firings.

Every write bumps the automation's revision and NOTIFYs `baton_automations` (a trigger in
migration 0010), so every router replica updates its index within moments.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from baton_schemas.automations import Automation, AutomationCreate, Firing
from baton_schemas.deployments import Deployment
from baton_schemas.triggers import DeploymentTrigger

from .pools import NotFound
from .types import Connection

CHANNEL = "baton_automations"


class AutomationExists(ValueError):
    pass


def automation_from_row(row: asyncpg.Record) -> Automation:
    return Automation(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        enabled=row["enabled"],
        trigger=row["trigger"],
        actions=row["actions"],
        actions_on_trigger=row["actions_on_trigger"],
        actions_on_resolve=row["actions_on_resolve"],
        deployment_id=row["deployment_id"],
        revision=row["revision"],
        created=row["created"],
        updated=row["updated"],
    )


def _dump(create: AutomationCreate) -> tuple[Any, ...]:
    return (
        create.trigger.model_dump(mode="json"),
        [a.model_dump(mode="json") for a in create.actions],
        [a.model_dump(mode="json") for a in create.actions_on_trigger],
        [a.model_dump(mode="json") for a in create.actions_on_resolve],
    )


async def create_automation(
    conn: Connection, create: AutomationCreate, *, deployment_id: uuid.UUID | None = None
) -> Automation:
    try:
        row = await conn.fetchrow(
            """INSERT INTO automations (id, name, description, enabled, trigger, actions,
                   actions_on_trigger, actions_on_resolve, deployment_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            uuid.uuid4(),
            create.name,
            create.description,
            create.enabled,
            *_dump(create),
            deployment_id,
        )
    except asyncpg.UniqueViolationError:
        raise AutomationExists(f"an automation named {create.name!r} exists already") from None
    assert row is not None
    return automation_from_row(row)


async def replace_automation(conn: Connection, name: str, create: AutomationCreate) -> Automation:
    """Change an automation in place (its id, firings and windows stay)."""
    row = await conn.fetchrow(
        """UPDATE automations SET name = $2, description = $3, enabled = $4, trigger = $5,
               actions = $6, actions_on_trigger = $7, actions_on_resolve = $8,
               revision = nextval('automation_revisions'), updated = now()
           WHERE name = $1 RETURNING *""",
        name,
        create.name,
        create.description,
        create.enabled,
        *_dump(create),
    )
    if row is None:
        raise NotFound(f"automation {name!r} does not exist")
    return automation_from_row(row)


async def set_enabled(conn: Connection, name: str, enabled: bool) -> Automation:
    row = await conn.fetchrow(
        """UPDATE automations SET enabled = $2, revision = nextval('automation_revisions'),
               updated = now()
           WHERE name = $1 RETURNING *""",
        name,
        enabled,
    )
    if row is None:
        raise NotFound(f"automation {name!r} does not exist")
    return automation_from_row(row)


async def get_automation(conn: Connection, name: str) -> Automation:
    row = await conn.fetchrow("SELECT * FROM automations WHERE name = $1", name)
    if row is None:
        raise NotFound(f"automation {name!r} does not exist")
    return automation_from_row(row)


async def list_automations(conn: Connection) -> list[Automation]:
    return [automation_from_row(r) for r in await conn.fetch("SELECT * FROM automations ORDER BY name")]


async def delete_automation(conn: Connection, name: str) -> None:
    if (await conn.execute("DELETE FROM automations WHERE name = $1", name)).endswith(" 0"):
        raise NotFound(f"automation {name!r} does not exist")


async def list_firings(conn: Connection, automation_id: uuid.UUID, limit: int = 100) -> list[Firing]:
    rows = await conn.fetch(
        "SELECT * FROM firings WHERE automation_id = $1 ORDER BY created DESC, id LIMIT $2",
        automation_id,
        limit,
    )
    return [
        Firing(
            id=r["id"],
            automation_id=r["automation_id"],
            automation_name=r["automation_name"],
            kind=r["kind"],
            key=r["key"],
            trigger_path=r["trigger_path"],
            bucket_key=r["bucket_key"],
            event_ids=list(r["event_ids"]),
            ok=r["ok"],
            actions=r["actions"],
            created=r["created"],
        )
        for r in rows
    ]


# --- a deployment's triggers ---------------------------------------------------------------


def deployment_trigger_name(deployment: Deployment, index: int, trigger: DeploymentTrigger) -> str:
    return f"{deployment.flow_name}/{deployment.name}:{trigger.name or f'trigger-{index}'}"


def deployment_automation(deployment: Deployment, index: int, trigger: DeploymentTrigger) -> AutomationCreate:
    """The automation of a baton.yaml trigger: its event trigger, and "run this deployment"."""
    fields = trigger.model_dump(mode="json", exclude={"name", "enabled", "parameters", "delay"})
    return AutomationCreate.model_validate(
        {
            "name": deployment_trigger_name(deployment, index, trigger),
            "description": f"trigger {index} of deployment {deployment.flow_name}/{deployment.name}",
            "enabled": trigger.enabled,
            "trigger": fields,
            "actions": [
                {
                    "type": "run-deployment",
                    "deployment": str(deployment.id),
                    "parameters": trigger.parameters,
                    "delay": trigger.delay,
                }
            ],
        }
    )


async def sync_deployment_triggers(
    conn: Connection, deployment: Deployment, triggers: list[DeploymentTrigger]
) -> list[Automation]:
    """Make the deployment's automations those of `triggers`: same name, updated in place (its
    windows and firings kept); new ones created; those of removed triggers deleted."""
    wanted = [deployment_automation(deployment, i, t) for i, t in enumerate(triggers)]
    existing = {
        r["name"]: r["id"]
        for r in await conn.fetch("SELECT id, name FROM automations WHERE deployment_id = $1", deployment.id)
    }
    found = []
    for create in wanted:
        if create.name in existing:
            found.append(await replace_automation(conn, create.name, create))
        else:
            found.append(await create_automation(conn, create, deployment_id=deployment.id))
    stale = [i for name, i in existing.items() if name not in {c.name for c in wanted}]
    if stale:
        await conn.execute("DELETE FROM automations WHERE id = ANY($1::uuid[])", stale)
    return found
