"""The `baton` command line. Sub-commands import what they need lazily, so `baton --help` is quick."""

from __future__ import annotations

import typer

from .. import __version__
from . import (
    _artifacts,
    _audit,
    _automations,
    _backfill,
    _catalog,
    _concurrency_limits,
    _config,
    _dead_letters,
    _deploy,
    _deployments,
    _events,
    _flow_runs,
    _help,
    _server,
    _spool,
    _variables,
    _webhooks,
    _work_pools,
    _workers,
)

_help.install()
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    help="Baton: workflow orchestration.",
)
app.add_typer(_server.app, name="server")
app.add_typer(_server.api_key_app, name="api-key")
app.add_typer(_server.schemas_app, name="schemas")
app.add_typer(_flow_runs.app, name="flow-run", help="Inspect, follow, cancel, retry and resume flow runs.")
app.add_typer(_work_pools.app, name="work-pool", help="Work pools and their queues.")
app.add_typer(_deployments.app, name="deployment", help="Deployments: list, inspect, run.")
app.add_typer(_workers.app, name="worker", help="Workers: start one, list them.")
app.add_typer(
    _dead_letters.app, name="dead-letters", help="Messages parked in baton.dead: list, replay, drop."
)
app.add_typer(_audit.app, name="audit", help="The audit log: every change and the key that made it.")
app.add_typer(_events.app, name="event", help="Events: list, follow, emit.")
app.add_typer(_webhooks.app, name="webhook", help="Webhooks: URLs that turn any request into an event.")
app.add_typer(
    _automations.app, name="automation", help="Automations: create, list, inspect, pause, resume, firings."
)
app.add_typer(_spool.app, name="spool", help="Reports spooled while the server was unreachable.")
_deploy.register(app)
_backfill.register(_deployments.app)
app.add_typer(_config.app, name="config", help="The profile ($BATON_HOME/profile.env): view, set, unset.")
app.add_typer(_catalog.flow_app, name="flow", help="Flows: list them.")
app.add_typer(
    _catalog.task_run_app, name="task-run", help="Task runs: list those of a flow run, inspect one."
)
app.add_typer(_variables.app, name="variable", help="Variables: named JSON values kept by the server.")
app.add_typer(_artifacts.app, name="artifact", help="Artifacts: markdown, tables and links made by runs.")
app.add_typer(
    _concurrency_limits.app,
    name="concurrency-limit",
    help="Global concurrency limits, rate limits and task tag limits (tag:TAG): "
    "create, ls, inspect, update, delete.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"baton {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print Baton's version and exit."
    ),
) -> None:
    """Baton: workflow orchestration."""


def main() -> None:
    app()
