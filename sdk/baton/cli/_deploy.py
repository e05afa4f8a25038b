"""`baton deploy`: create or update the deployments in baton.yaml."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the top-level `deploy` command to `app`."""
