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
    parameter schema the server checks every run against).

    baton.yaml, every section (only `deployments`, with a name, an entrypoint and a work pool
    each, is required; unset options are the flow's own, `@flow(retries=...)` and so on):

    ```yaml
    name: my-project                      # optional
    definitions:                          # optional: YAML anchors the deployments reuse
      tags: &tags [team-a]
    pull:                                 # default pull steps of every deployment
      - git_clone: {repository: https://github.com/me/etl.git, branch: main}
      - set_working_directory: etl
      - pip_install_requirements: requirements.txt
      - run_shell_script: make build
    deployments:
      - name: prod
        entrypoint: flows/hello.py:say_hello
        description: Greets                # default: the flow's docstring
        version: "1.2"                     # default: the flow's version
        tags: *tags
        parameters: {name: world}
        enforce_parameter_schema: true
        work_pool: {name: local, work_queue_name: default, job_variables: {env: {X: "1"}}}
        pull: []                           # this deployment's own steps instead
        concurrency_limit: {limit: 2, collision_strategy: cancel-new}   # or just 2
        retry_policy: {retries: 3, retry_delay_seconds: 10}             # default: the flow's
        timeout_seconds: 600               # default: the flow's
        log_prints: true                   # default: the flow's
        schedules:
          - cron: "0 6 * * *"
            timezone: Europe/Paris
          - interval: 3600
            active: false
            parameters: {name: hourly}
          - rrule: "FREQ=WEEKLY;BYDAY=MO"
        triggers:
          - match: {baton.resource.id: "baton.flow-run.*"}
            expect: [baton.flow-run.Completed]
        paused: false
        task_run_events: false             # each task-run transition also an event
    ```

    Without pull steps a deployment starts in this folder (a worker on this machine finds the
    code)."""
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
