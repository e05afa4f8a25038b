"""`baton deployment ...`: list, inspect, run (and watch) and delete deployments."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from . import _api, _schedules, _watch

app = typer.Typer(no_args_is_help=True, help="Deployments: list, inspect, run, pause, resume, schedules.")
app.add_typer(_schedules.app, name="schedule")

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="flow-name/deployment-name, or the deployment's id.", show_default=False
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("ls")
def list_deployments(
    flow: Annotated[str | None, typer.Option("--flow", help="Only deployments of this flow.")] = None,
    as_json: AsJson = False,
) -> None:
    """List deployments."""
    with _api.client() as client:
        deployments = client.read_deployments(flow_name=flow)
    if as_json:
        _api.print_json(deployments)
        return
    table = _api.table("Deployment", "Work pool", "Queue", "Schedules", "Triggers", "Status", "ID")
    for d in sorted(deployments, key=lambda d: (d.flow_name, d.name)):
        status = Text("paused", style="yellow") if d.paused else Text("active", style="green")
        table.add_row(
            f"{d.flow_name}/{d.name}",
            d.work_pool_name,
            d.work_queue_name,
            str(len(d.schedules)),
            str(len(d.triggers)),
            status,
            str(d.id),
        )
    _api.console().print(table)


@app.command("inspect")
def inspect_deployment(name: Name, as_json: AsJson = False) -> None:
    """A deployment and the next 5 run times of each schedule (in your time zone).

    With --json, all of it: entrypoint, parameters and their schema, pool, pull steps,
    schedules, schedule policy and triggers."""
    from .._deployments import read_deployment

    with _api.client() as client:
        deployment = read_deployment(client, name)
        upcoming = client.read_upcoming_slots(deployment.id, 5) if deployment.schedules else []
    if as_json:
        _api.print_json(deployment)
        return
    out = _api.console()
    status = Text("paused", style="yellow") if deployment.paused else Text("active", style="green")
    out.print(
        Text.assemble(
            ("deployment ", "bold"), (f"{deployment.flow_name}/{deployment.name}", "bold"), " ", status
        )
    )
    policy = deployment.schedule_policy
    for label, value in (
        ("id", str(deployment.id)),
        ("entrypoint", deployment.entrypoint),
        ("work pool", f"{deployment.work_pool_name} (queue {deployment.work_queue_name})"),
        ("parameters", json.dumps(deployment.parameters)),
        (
            "schedule policy",
            f"catchup {policy.catchup} within {policy.catchup_window:g}s, overlap {policy.overlap}, "
            f"late after {policy.late_after:g}s",
        ),
    ):
        out.print(Text.assemble((f"  {label}: ", "grey50"), value), soft_wrap=True)
    _schedules.print_upcoming(deployment, upcoming)


@app.command("pause")
def pause_deployment(name: Name) -> None:
    """Pause a deployment: no new scheduled runs (those not started are removed); runs under way go on."""
    _schedules.set_paused(name, paused=True)


@app.command("resume")
def resume_deployment(name: Name) -> None:
    """Resume a paused deployment: its schedules make runs again."""
    _schedules.set_paused(name, paused=False)


@app.command("delete")
def delete_deployment(
    name: Name, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False
) -> None:
    """Delete a deployment (its past runs stay)."""
    from .._deployments import read_deployment

    with _api.client() as client:
        deployment = read_deployment(client, name)
        label = f"{deployment.flow_name}/{deployment.name}"
        if not yes:
            typer.confirm(f"Delete deployment {label!r}?", abort=True)
        client.delete_deployment(deployment.id)
    _api.console().print(f"Deleted deployment {label!r}.")


@app.command("run")
def run(
    name: Name,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="A parameter, KEY=VALUE; repeatable. VALUE is read as JSON if it parses, except "
            "for a parameter the flow declares a string.",
        ),
    ] = None,
    params: Annotated[str | None, typer.Option("--params", help="Parameters as one JSON object.")] = None,
    job_variable: Annotated[
        list[str] | None,
        typer.Option("--job-variable", "-jv", help="A job variable, KEY=VALUE; repeatable."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag of the run; repeatable.")] = None,
    run_name: Annotated[str | None, typer.Option("--name", help="The run's name.")] = None,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="Follow its states and logs; exit 0 only if it Completes."),
    ] = False,
) -> None:
    """Create a run of a deployment (and follow it with --watch).

    Its parameters are merged over the deployment's and checked by the server: a bad one is
    refused, naming the field, and no run is created."""
    from baton_schemas.deployments import DeploymentRunCreate

    from .._deployments import read_deployment

    out = _api.console()
    with _api.client() as client:
        deployment = read_deployment(client, name)
        # a string parameter keeps its text: `--param label=123` is "123"
        pairs = _api.parse_pairs(param, "--param", deployment.parameter_schema)
        request = DeploymentRunCreate(
            parameters={**_api.parse_object(params, "--params"), **pairs},
            job_variables=_api.parse_pairs(job_variable, "--job-variable"),
            tags=list(tag or ()),
            name=run_name,
        )
        flow_run = client.create_deployment_run(deployment.id, request)
        out.print(
            Text.assemble(
                "Created flow run ",
                (flow_run.name, "bold"),
                f" ({flow_run.id}) of {deployment.flow_name}/{deployment.name}: ",
                _api.state_text(flow_run.state),
            )
        )
        if not watch:
            return
        if not any(worker.online for worker in client.read_workers(deployment.work_pool_name)):
            pool = deployment.work_pool_name
            _api.console(stderr=True).print(
                f"note: no worker of pool {pool!r} is online: the run waits until one starts "
                f"(baton worker start --pool {pool})"
            )
        flow_run = _watch.watch(client, flow_run)
    _watch.report_end(flow_run)
