"""A deployment's schedules as stored in `deployments.schedules`: ids, pause, resume, delete.

The scheduler learns of every change from the row itself (a trigger records the deployment as
changed), so these functions only write `deployments`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from baton_schemas.schedules import DeploymentSchedule
from baton_schemas.slots import next_slots

from .pools import NotFound
from .types import Connection


def keep_ids(
    previous: list[DeploymentSchedule], schedules: list[DeploymentSchedule]
) -> list[DeploymentSchedule]:
    """Each schedule with its id: the one it had under the same slug, else a new one. A client
    cannot choose ids (they key the runs a schedule makes)."""
    known = {s.slug: s.id for s in previous if s.slug is not None and s.id is not None}
    return [s.model_copy(update={"id": known.get(s.slug or "") or uuid.uuid4()}) for s in schedules]


def schedule_warnings(schedules: list[DeploymentSchedule], now: datetime) -> list[str]:
    """What was accepted but will not run: an active schedule with no time after now."""
    warnings = []
    for item in schedules:
        if item.active and not next_slots(item.schedule, now, 1):
            warnings.append(
                f"schedule {item.slug!r} has no run time after now ({now:%Y-%m-%d %H:%M} UTC): "
                "its UNTIL or COUNT is past, or it never matches a date; it will make no runs"
            )
    return warnings


def find(schedules: list[DeploymentSchedule], ref: str) -> int:
    """The index of the schedule whose id or slug is `ref`."""
    for index, item in enumerate(schedules):
        if ref == item.slug or ref == str(item.id):
            return index
    slugs = ", ".join(repr(s.slug) for s in schedules) or "none"
    raise NotFound(f"the deployment has no schedule {ref!r} (its schedules: {slugs})")


async def read_schedules(
    conn: Connection, deployment_id: uuid.UUID, *, lock: bool = False
) -> list[DeploymentSchedule]:
    row = await conn.fetchrow(
        "SELECT schedules FROM deployments WHERE id = $1" + (" FOR UPDATE" if lock else ""), deployment_id
    )
    if row is None:
        raise NotFound(f"deployment {deployment_id} does not exist")
    return [DeploymentSchedule.model_validate(s) for s in row["schedules"]]


async def _write(conn: Connection, deployment_id: uuid.UUID, schedules: list[DeploymentSchedule]) -> None:
    await conn.execute(
        "UPDATE deployments SET schedules = $2, updated = now() WHERE id = $1",
        deployment_id,
        [s.model_dump(mode="json") for s in schedules],
    )


async def set_active(
    conn: Connection, deployment_id: uuid.UUID, ref: str, active: bool
) -> DeploymentSchedule:
    """Pause (active=False) or resume one schedule; a no-op when it already is so."""
    async with conn.transaction():
        schedules = await read_schedules(conn, deployment_id, lock=True)
        index = find(schedules, ref)
        if schedules[index].active != active:
            schedules[index] = schedules[index].model_copy(update={"active": active})
            await _write(conn, deployment_id, schedules)
        return schedules[index]


async def remove(conn: Connection, deployment_id: uuid.UUID, ref: str) -> DeploymentSchedule:
    async with conn.transaction():
        schedules = await read_schedules(conn, deployment_id, lock=True)
        removed = schedules.pop(find(schedules, ref))
        await _write(conn, deployment_id, schedules)
        return removed


async def set_paused(conn: Connection, deployment_id: uuid.UUID, paused: bool) -> None:
    """Pause or resume the whole deployment: no new scheduled runs while paused."""
    result = await conn.execute(
        "UPDATE deployments SET paused = $2, updated = now() WHERE id = $1 AND paused IS DISTINCT FROM $2",
        deployment_id,
        paused,
    )
    if (
        result.endswith(" 0")
        and await conn.fetchval("SELECT 1 FROM deployments WHERE id = $1", deployment_id) is None
    ):
        raise NotFound(f"deployment {deployment_id} does not exist")
