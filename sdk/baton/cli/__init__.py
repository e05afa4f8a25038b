"""The `baton` command line. Sub-commands import what they need lazily, so `baton --help` is quick."""

from __future__ import annotations

import typer

from . import (
    _audit,
    _backfill,
    _dead_letters,
    _deploy,
    _deployments,
    _events,
    _flow_runs,
    _server,
    _webhooks,
    _work_pools,
    _workers,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    help="Baton: workflow orchestration.",
)
app.add_typer(_server.app, name="server")
app.add_typer(_server.api_key_app, name="api-key")
app.add_typer(_server.schemas_app, name="schemas")
app.add_typer(_flow_runs.app, name="flow-run", help="Inspect, follow and cancel flow runs.")
app.add_typer(_work_pools.app, name="work-pool", help="Work pools and their queues.")
app.add_typer(_deployments.app, name="deployment", help="Deployments: list, inspect, run.")
app.add_typer(_workers.app, name="worker", help="Workers: start one, list them.")
app.add_typer(
    _dead_letters.app, name="dead-letters", help="Messages parked in baton.dead: list, replay, drop."
)
app.add_typer(_audit.app, name="audit", help="The audit log: every change and the key that made it.")
app.add_typer(_events.app, name="event", help="Events: list, follow, emit.")
app.add_typer(_webhooks.app, name="webhook", help="Webhooks: URLs that turn any request into an event.")
_deploy.register(app)
_backfill.register(_deployments.app)


def main() -> None:
    app()
