"""What an automation must pass at create time, beyond its model: every template compiles, every
deployment and work pool it names exists. Each problem is one error naming its field, in
FastAPI's shape (`loc`, `msg`, `type`), for a 422."""

from __future__ import annotations

import uuid
from typing import Any

from baton_schemas.automations import (
    Action,
    AutomationCreate,
    CallWebhook,
    CancelFlowRun,
    EmitEvent,
    PauseDeployment,
    PauseRun,
    PauseSchedule,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeDeployment,
    ResumeRun,
    ResumeSchedule,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
    SuspendRun,
)
from baton_schemas.deployments import Deployment

from ..db.deployments import get_deployment, get_deployment_by_name
from ..db.pools import NotFound, get_pool, get_queue
from ..db.types import Connection
from .templating import template_errors


class InvalidAutomation(ValueError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


async def find_deployment(conn: Connection, reference: str) -> Deployment:
    """A deployment by id or `flow/name`; NotFound saying which."""
    try:
        deployment_id = uuid.UUID(reference)
    except ValueError:
        flow, sep, name = reference.partition("/")
        if not sep or not flow or not name:
            raise NotFound(
                f"deployment {reference!r} does not exist: name it 'flow/deployment' or by id"
            ) from None
        return await get_deployment_by_name(conn, flow, name)
    return await get_deployment(conn, deployment_id)


def _templated(action: Action) -> dict[str, Any]:
    if isinstance(action, RunDeployment):
        return {"parameters": action.parameters}
    if isinstance(action, CancelFlowRun | PauseRun | SuspendRun):
        return {"flow_run": action.flow_run}
    if isinstance(action, ResumeRun):
        return {"flow_run": action.flow_run, "run_input": action.run_input}
    if isinstance(action, CallWebhook):
        return {"url": action.url, "body": action.body, "headers": action.headers}
    if isinstance(action, EmitEvent):
        return {"event": action.event, "resource": action.resource, "payload": action.payload}
    return {}


async def _target_errors(
    conn: Connection, action: Action, loc: tuple[str | int, ...]
) -> list[dict[str, Any]]:
    reference: str | None = None
    field = ""
    if isinstance(
        action, RunDeployment | PauseDeployment | ResumeDeployment | PauseSchedule | ResumeSchedule
    ):
        reference, field = action.deployment, "deployment"
        finder: Any = find_deployment
    elif isinstance(action, PauseWorkQueue | ResumeWorkQueue) and action.work_pool and action.work_queue:
        reference, field = action.work_queue, "work_queue"
        pool = action.work_pool

        async def finder(conn: Connection, name: str) -> Any:
            return await get_queue(conn, pool, name)
    elif isinstance(action, PauseWorkPool | ResumeWorkPool | PauseWorkQueue | ResumeWorkQueue):
        reference, field = action.work_pool, "work_pool"
        finder = get_pool
    if reference is None:
        return []
    try:
        await finder(conn, reference)
    except NotFound as exc:
        return [{"loc": [*loc, field], "msg": str(exc), "type": "not_found"}]
    return []


async def check_automation(conn: Connection, create: AutomationCreate) -> None:
    """InvalidAutomation listing every problem, or nothing."""
    errors: list[dict[str, Any]] = []
    for group in ("actions", "actions_on_trigger", "actions_on_resolve"):
        for index, action in enumerate(getattr(create, group)):
            loc: tuple[str | int, ...] = ("body", group, index)
            for field, value in _templated(action).items():
                errors += template_errors(value, (*loc, field))
            errors += await _target_errors(conn, action, loc)
    if not (create.actions or create.actions_on_trigger or create.actions_on_resolve):
        errors.append({"loc": ["body", "actions"], "msg": "give at least one action", "type": "missing"})
    if errors:
        raise InvalidAutomation(errors)
