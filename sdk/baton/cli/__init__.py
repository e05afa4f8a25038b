"""The `baton` command line. Sub-commands import what they need lazily, so `baton --help` is quick."""

from __future__ import annotations

import typer

from . import _flow_runs, _server

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Baton: workflow orchestration.")
app.add_typer(_server.app, name="server")
app.add_typer(_server.api_key_app, name="api-key")
app.add_typer(_server.schemas_app, name="schemas")
app.add_typer(_flow_runs.app, name="flow-run")


def main() -> None:
    app()
