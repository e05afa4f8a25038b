"""The actions a firing performs, one module per kind; `perform` runs one in a savepoint of the
firing's transaction, so a failed action leaves nothing behind but its failed outcome."""

from __future__ import annotations

import logging

from baton_schemas.automations import (
    Action,
    ActionOutcome,
    CallWebhook,
    CancelFlowRun,
    EmitEvent,
    PauseRun,
    ResumeRun,
    RunDeployment,
    SuspendRun,
)

from ...db.types import Connection
from ._base import ActionContext, ActionFailed, Done
from .control import cancel_run, toggle
from .emit import emit_event
from .pauses import hold_run, resume_run
from .run_deployment import run_deployment
from .webhook import prepare_call

log = logging.getLogger(__name__)


async def _dispatch(conn: Connection, firing: ActionContext, index: int, action: Action) -> Done:
    if isinstance(action, RunDeployment):
        return await run_deployment(conn, firing, index, action)
    if isinstance(action, CancelFlowRun):
        return await cancel_run(conn, firing, index, action)
    if isinstance(action, PauseRun | SuspendRun):
        return await hold_run(conn, firing, index, action)
    if isinstance(action, ResumeRun):
        return await resume_run(conn, firing, index, action)
    if isinstance(action, CallWebhook):
        return await prepare_call(conn, firing, index, action)
    if isinstance(action, EmitEvent):
        return await emit_event(conn, firing, index, action)
    return await toggle(conn, firing, index, action)


async def perform(conn: Connection, firing: ActionContext, index: int, action: Action) -> Done:
    try:
        async with conn.transaction():  # a savepoint: a failed action undoes only itself
            return await _dispatch(conn, firing, index, action)
    except ActionFailed as exc:
        log.info("automation %s: action %d (%s) failed: %s", firing.automation.name, index, action.type, exc)
        return Done(ActionOutcome(index=index, type=action.type, ok=False, detail=str(exc)))


__all__ = ["ActionContext", "ActionFailed", "Done", "perform"]
