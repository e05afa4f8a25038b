"""pause-run, suspend-run and resume-run: `tracker.pauses` in the firing's transaction."""

from __future__ import annotations

from baton_schemas.automations import PauseRun, ResumeRun, SuspendRun

from ...db.types import Connection
from ...events.templates import TemplateError
from ...tracker.pauses import InvalidInput, NotPaused, hold_flow_run, resume_flow_run
from ...tracker.transitions import RunNotFound
from ..templating import render_value
from ._base import ActionContext, ActionFailed, Done
from .control import run_outcome, target_run


async def hold_run(
    conn: Connection, firing: ActionContext, index: int, action: PauseRun | SuspendRun
) -> Done:
    suspend = isinstance(action, SuspendRun)
    run_id = await target_run(firing, action.flow_run, "suspend" if suspend else "pause")
    try:
        outcome = await hold_flow_run(
            conn,
            run_id,
            suspend=suspend,
            timeout_seconds=action.timeout or None,
            reason=f"{'suspended' if suspend else 'paused'} by automation {firing.automation.name!r}",
            default_lease_seconds=firing.default_lease_seconds,
        )
    except (RunNotFound, NotPaused) as exc:
        raise ActionFailed(str(exc)) from None
    return run_outcome(index, action.type, run_id, outcome)


async def resume_run(conn: Connection, firing: ActionContext, index: int, action: ResumeRun) -> Done:
    run_id = await target_run(firing, action.flow_run, "resume")
    try:
        run_input = (
            await render_value(action.run_input, firing.context, firing.limits)
            if action.run_input is not None
            else None
        )
    except TemplateError as exc:
        raise ActionFailed(f"run_input: {exc}") from None
    if run_input is not None and not isinstance(run_input, dict):
        raise ActionFailed(f"run_input: rendered to {type(run_input).__name__}, not an object")
    try:
        outcome = await resume_flow_run(
            conn,
            run_id,
            run_input,
            default_lease_seconds=firing.default_lease_seconds,
            dispatch_within=firing.dispatch_within,
            reason=f"resumed by automation {firing.automation.name!r}",
        )
    except (RunNotFound, NotPaused, InvalidInput) as exc:
        raise ActionFailed(str(exc)) from None
    return run_outcome(index, action.type, run_id, outcome)
