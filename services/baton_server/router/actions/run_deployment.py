"""run-deployment: a run of a deployment, parameters rendered from the firing and validated
against the deployment's schema, made in the firing's transaction (and dispatched in it when
due now, as every deployment run is). Its idempotency key is the firing's and the action's."""

from __future__ import annotations

from datetime import timedelta

from baton_schemas.automations import ActionOutcome, RunDeployment
from baton_schemas.deployments import DeploymentRunCreate

from ...db.deployments import InvalidParameters, create_deployment_run
from ...db.flow_runs import InvalidRun
from ...db.job_variables import InvalidJobVariables
from ...db.pools import NotFound
from ...db.types import Connection
from ...events.templates import TemplateError
from ..templating import render_value
from ..validation import find_deployment
from ._base import ActionContext, ActionFailed, Done


async def run_deployment(conn: Connection, firing: ActionContext, index: int, action: RunDeployment) -> Done:
    deployment = firing.deployments.get(action.deployment)
    if deployment is None:
        try:
            deployment = await find_deployment(conn, action.deployment)
        except NotFound as exc:
            raise ActionFailed(str(exc)) from None
        firing.deployments[action.deployment] = deployment
    try:
        parameters = await render_value(action.parameters, firing.context, firing.limits)
    except TemplateError as exc:
        raise ActionFailed(f"parameters: {exc}") from None
    if not isinstance(parameters, dict):
        raise ActionFailed("parameters did not render to an object")
    when = firing.now + timedelta(seconds=action.delay) if action.delay else None
    try:
        request = DeploymentRunCreate(
            parameters=parameters,
            job_variables=action.job_variables,
            idempotency_key=firing.idempotency_key(index),
            scheduled_time=when,
        )
        run, rows, _ = await create_deployment_run(
            conn, deployment, request, dispatch_within=firing.dispatch_within
        )
    except (InvalidParameters, InvalidJobVariables) as exc:
        raise ActionFailed(
            f"invalid parameters for {deployment.flow_name}/{deployment.name}: {exc}"
        ) from None
    except (InvalidRun, ValueError) as exc:
        raise ActionFailed(str(exc)) from None
    outcome = ActionOutcome(
        index=index,
        type=action.type,
        ok=True,
        detail=f"flow run {run.name} of {deployment.flow_name}/{deployment.name}",
        flow_run_id=run.id,
    )
    return Done(outcome, rows)
