"""`baton deploy`: create or update the deployments in baton.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from .._deploy._errors import DeployError
from .._transport import RequestRejected
from . import _api


def deploy(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME", help="Deploy only these deployments (all by default).", show_default=False
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="The baton.yaml (or its folder); ./baton.yaml by default."),
    ] = None,
) -> None:
    """Create or update the deployments of baton.yaml (each one's flow is imported to build the
    parameter schema the server checks every run against)."""
    from .._deploy.config import find_config, load_config
    from .._deploy.deployer import plan

    with _api.errors():
        path = find_config(file)
        config = load_config(path)
        try:
            planned = plan(config, path.parent.resolve(), names or ())
        except DeployError as exc:
            _api.fail(f"{path.name}: {exc}")
    out = _api.console()
    with _api.client() as client:
        for item in planned:
            try:
                deployment = client.create_deployment(item.request)
            except RequestRejected as exc:
                if exc.status in (401, 403):
                    raise
                _api.fail(f"{path.name}: {item.label}: {_api.rejection(exc)}")
            verb = "Created" if deployment.created == deployment.updated else "Updated"
            out.print(
                Text.assemble(
                    f"{verb} deployment ",
                    (item.full_name, "bold"),
                    f" (pool {deployment.work_pool_name}, queue {deployment.work_queue_name}, "
                    f"id {deployment.id})",
                )
            )
            for warning in deployment.warnings:
                _api.console(stderr=True).print(
                    f"warning: {item.full_name}: {warning}", style="yellow", soft_wrap=True
                )
    if planned:
        out.print(Text(f"Run one with: baton deployment run {planned[0].full_name}", style="grey50"))


def register(app: typer.Typer) -> None:
    """Adds the top-level `deploy` command to `app`."""
    app.command("deploy")(deploy)
