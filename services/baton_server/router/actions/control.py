"""cancel-flow-run, and pausing or resuming a deployment, its schedules, a work pool, a work
queue or an automation: each in the firing's transaction. A target named by the action wins;
else the firing event's own (its resource or a related one)."""

from __future__ import annotations

import uuid

from baton_schemas.automations import (
    ActionOutcome,
    CancelFlowRun,
    PauseAutomation,
    PauseDeployment,
    PauseSchedule,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeAutomation,
    ResumeDeployment,
    ResumeSchedule,
    ResumeWorkPool,
    ResumeWorkQueue,
)
from baton_schemas.deployments import Deployment
from baton_schemas.pools import WorkQueueUpdate
from baton_schemas.states import Verdict

from ...db import schedules
from ...db.pools import NotFound, update_queue
from ...db.types import Connection
from ...events.templates import TemplateError
from ...tracker.cancellation import cancel_flow_run
from ...tracker.transitions import Outcome, RunNotFound
from ..templating import render_value
from ..validation import find_deployment
from ._base import ActionContext, ActionFailed, Done


async def target_run(firing: ActionContext, flow_run: str | None, verb: str) -> uuid.UUID:
    """The run an action is about: the one it names (templated), else the firing event's."""
    target: str | None
    try:
        target = await render_value(flow_run, firing.context, firing.limits) if flow_run else None
    except TemplateError as exc:
        raise ActionFailed(f"flow_run: {exc}") from None
    target = target or firing.related("flow-run")
    if not target:
        raise ActionFailed(f"no flow run to {verb}: the event is about none, and the action names none")
    try:
        return uuid.UUID(str(target))
    except ValueError:
        raise ActionFailed(f"{target!r} is not a flow run id") from None


def run_outcome(index: int, action_type: str, run_id: uuid.UUID, outcome: Outcome) -> Done:
    result = outcome.result
    ok = result.verdict is Verdict.ACCEPT
    detail = f"flow run {run_id}: {result.verdict.value}" + (f" ({result.reason})" if result.reason else "")
    return Done(ActionOutcome(index=index, type=action_type, ok=ok, detail=detail), outcome.outbox)


async def cancel_run(conn: Connection, firing: ActionContext, index: int, action: CancelFlowRun) -> Done:
    run_id = await target_run(firing, action.flow_run, "cancel")
    try:
        outcome = await cancel_flow_run(
            conn,
            run_id,
            default_lease_seconds=firing.default_lease_seconds,
            reason=f"cancelled by automation {firing.automation.name!r}",
        )
    except RunNotFound as exc:
        raise ActionFailed(str(exc)) from None
    return run_outcome(index, action.type, run_id, outcome)


Toggle = (
    PauseDeployment
    | ResumeDeployment
    | PauseSchedule
    | ResumeSchedule
    | PauseWorkPool
    | ResumeWorkPool
    | PauseWorkQueue
    | ResumeWorkQueue
    | PauseAutomation
    | ResumeAutomation
)


async def _deployment(conn: Connection, firing: ActionContext, named: str | None) -> Deployment:
    reference = named or firing.related("deployment")
    if not reference:
        raise ActionFailed("no deployment: the event relates to none, and the action names none")
    try:
        return await find_deployment(conn, reference)
    except NotFound as exc:
        raise ActionFailed(str(exc)) from None


async def _schedules(conn: Connection, deployment: Deployment, named: str | None, pause: bool) -> str:
    """Pause or resume one schedule of the deployment (`named`), or all of them."""
    refs = [named] if named else [str(s.id) for s in await schedules.read_schedules(conn, deployment.id)]
    try:
        for ref in refs:
            await schedules.set_active(conn, deployment.id, ref, not pause)
    except NotFound as exc:
        raise ActionFailed(str(exc)) from None
    which = f"schedule {named}" if named else f"{len(refs)} schedule(s)"
    return f"{which} of deployment {deployment.flow_name}/{deployment.name}"


async def _work_queue(
    conn: Connection, firing: ActionContext, action: PauseWorkQueue | ResumeWorkQueue, pause: bool
) -> str:
    pool = action.work_pool or firing.related("work-pool")
    related = firing.related("work-queue")  # `{pool}.{queue}`
    queue = action.work_queue or (
        related[len(pool) + 1 :] if pool and related and related.startswith(f"{pool}.") else None
    )
    if not pool or not queue:
        raise ActionFailed("no work queue: the event relates to none, and the action names none")
    try:
        await update_queue(conn, pool, queue, WorkQueueUpdate(paused=pause))
    except NotFound as exc:
        raise ActionFailed(str(exc)) from None
    return f"work queue {queue} of pool {pool}"


async def toggle(conn: Connection, firing: ActionContext, index: int, action: Toggle) -> Done:
    pause = action.type.startswith("pause-")
    if isinstance(action, PauseDeployment | ResumeDeployment):
        deployment = await _deployment(conn, firing, action.deployment)
        await conn.execute(
            "UPDATE deployments SET paused = $2, updated = now() WHERE id = $1", deployment.id, pause
        )
        what = f"deployment {deployment.flow_name}/{deployment.name}"
    elif isinstance(action, PauseSchedule | ResumeSchedule):
        deployment = await _deployment(conn, firing, action.deployment)
        what = await _schedules(conn, deployment, action.schedule, pause)
    elif isinstance(action, PauseWorkQueue | ResumeWorkQueue):
        what = await _work_queue(conn, firing, action, pause)
    elif isinstance(action, PauseWorkPool | ResumeWorkPool):
        pool = action.work_pool or firing.related("work-pool")
        if not pool:
            raise ActionFailed("no work pool: the event relates to none, and the action names none")
        if (await conn.execute("UPDATE work_pools SET paused = $2 WHERE name = $1", pool, pause)).endswith(
            " 0"
        ):
            raise ActionFailed(f"work pool {pool!r} does not exist")
        what = f"work pool {pool}"
    else:
        name = action.automation or firing.automation.name
        done = await conn.execute(
            """UPDATE automations SET enabled = $2, revision = nextval('automation_revisions'),
                   updated = now()
               WHERE name = $1""",
            name,
            not pause,
        )
        if done.endswith(" 0"):
            raise ActionFailed(f"automation {name!r} does not exist")
        what = f"automation {name}"
    detail = f"{'paused' if pause else 'resumed'} {what}"
    return Done(ActionOutcome(index=index, type=action.type, ok=True, detail=detail))
