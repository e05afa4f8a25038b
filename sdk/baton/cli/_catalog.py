"""`baton flow ls` and `baton task-run ls | inspect`: what the server knows, through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from . import _api

flow_app = typer.Typer(no_args_is_help=True, help="Flows: list them.")
task_run_app = typer.Typer(no_args_is_help=True, help="Task runs: list those of a flow run, inspect one.")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _when(moment: object) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if isinstance(moment, datetime) else "-"


@flow_app.command("ls")
def list_flows(as_json: AsJson = False) -> None:
    """Every flow the server has seen (registered by a run or a deployment), by name."""
    with _api.client() as client:
        flows = client.read_flows()
    if as_json:
        _api.print_json(flows)
        return
    if not flows:
        _api.console().print("No flows.")
        return
    table = _api.table("ID", "Name", "Created")
    for flow in sorted(flows, key=lambda f: f.name):
        table.add_row(str(flow.id), flow.name, _when(flow.created))
    _api.console().print(table)


@task_run_app.command("ls")
def list_task_runs(
    flow_run: Annotated[
        str,
        typer.Option(
            "--flow-run",
            "-r",
            help="The flow run: its id, the beginning of its id, or its name.",
            show_default=False,
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """The task runs of a flow run, in the order they ran."""
    with _api.client() as client:
        run = _api.find_flow_run(client, flow_run)
        task_runs = _api.all_task_runs(client, run.id)
    if as_json:
        _api.print_json(task_runs)
        return
    if not task_runs:
        _api.console().print(f"Flow run {run.name!r} has no task runs.")
        return
    table = _api.table("ID", "Name", "State", "Runs", "Start", "End")
    for task_run in task_runs:
        table.add_row(
            str(task_run.id),
            task_run.name,
            _api.state_text(task_run.state),
            str(task_run.run_count),
            _when(task_run.start_time),
            _when(task_run.end_time),
        )
    _api.console().print(table)


@task_run_app.command("inspect")
def inspect_task_run(
    task_run_id: Annotated[UUID, typer.Argument(metavar="ID", help="The task run's id.", show_default=False)],
    as_json: AsJson = False,
) -> None:
    """A task run: its state, tags, inputs and state history."""
    with _api.client() as client:
        task_run = client.read_task_run(task_run_id)
        history = client.read_task_run_states(task_run_id)
    if as_json:
        _api.print_json({"task_run": task_run, "states": history})
        return
    console = _api.console()
    console.print(Text.assemble((task_run.name, "bold"), f"  ({task_run.id})"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    inputs = "; ".join(
        f"{name} <- {', '.join(str(item.id) for item in items if item.id)}"
        for name, items in task_run.task_inputs.items()
    )
    for label, value in (
        ("Flow run", str(task_run.flow_run_id or "-")),
        ("Task", task_run.task_key),
        (
            "State",
            Text.assemble(_api.state_text(task_run.state), f"  {task_run.state.message or ''}".rstrip()),
        ),
        ("Run count", str(task_run.run_count)),
        ("Tags", ", ".join(task_run.tags) or "-"),
        ("Inputs", inputs or "-"),
        ("Started", _when(task_run.start_time)),
        ("Ended", _when(task_run.end_time)),
    ):
        grid.add_row(label, value)
    console.print(grid)
    console.print(Text("\nState history", style="bold"))
    states = _api.table("#", "State", "Time", "Message")
    for index, state in enumerate(history, 1):
        states.add_row(
            str(index),
            _api.state_text(state),
            _when(state.timestamp),
            ((state.message or "").splitlines()[-1:] and (state.message or "").splitlines()[-1]) or "",
        )
    console.print(states)
