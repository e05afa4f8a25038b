"""`baton flow-run ...`: list, inspect and follow runs."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect flow runs.")
