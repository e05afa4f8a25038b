"""`baton work-pool ...` and `baton work-pool queue ...`: where deployment runs wait for workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from baton_schemas.pools import Worker, WorkPool, WorkQueue

app = typer.Typer(no_args_is_help=True, help="Work pools and their queues.")
queue_app = typer.Typer(no_args_is_help=True, help="The queues of a work pool.")
app.add_typer(queue_app, name="queue")

Pool = Annotated[str, typer.Argument(metavar="POOL", help="The work pool's name.", show_default=False)]
Queue = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _paused(paused: bool) -> Text:
    return Text("paused", style="yellow") if paused else Text("ready", style="green")


def _read_template(path: Path) -> dict[str, Any]:
    from baton_schemas.job_templates import check_base_job_template

    try:
        template = json.loads(path.read_text())
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--base-job-template"
        ) from None
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}", param_hint="--base-job-template") from None
    problems = check_base_job_template(template)
    if problems:
        raise typer.BadParameter(f"{path}: {'; '.join(problems)}", param_hint="--base-job-template")
    assert isinstance(template, dict)
    return template


@app.command("create")
def create(
    name: Pool,
    type_: Annotated[str, typer.Option("--type", "-t", help="Infrastructure of its runs.")] = "process",
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N runs at once.")] = None,
    base_job_template: Annotated[
        Path | None,
        typer.Option(help="JSON file: {job_configuration, variables}; the type's default if unset."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the pool is for.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a work pool (with its queue `default`)."""
    from baton_schemas.job_templates import default_base_job_template
    from baton_schemas.pools import WorkPoolCreate

    if base_job_template is not None:
        template = _read_template(base_job_template)
    else:
        found = default_base_job_template(type_)
        if found is None:
            raise typer.BadParameter(
                f"no default job template for type {type_!r}: pass --base-job-template", param_hint="--type"
            )
        template = found
    try:
        request = WorkPoolCreate(
            name=name,
            type=type_,
            description=description,
            base_job_template=template,
            concurrency_limit=limit,
            paused=paused,
        )
    except ValueError as exc:
        _api.fail(f"work pool {name!r}: {_first_error(exc)}")
    with _api.client() as client:
        pool = client.create_work_pool(request)
    _api.console().print(f"Created work pool {pool.name!r} (type {pool.type}).")


def _first_error(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error.get("loc", ()))
        if error.get("type") == "string_pattern_mismatch":
            return f"{field}: use lower-case letters, digits, '-' and '_' (at most 63)"
        return f"{field}: {error.get('msg')}"
    return str(exc)


@app.command("ls")
def list_pools(as_json: AsJson = False) -> None:
    """List the work pools."""
    with _api.client() as client:
        pools = client.read_work_pools()
    if as_json:
        _api.print_json(pools)
        return
    table = _api.table("Name", "Type", "Status", "Limit", "Description")
    for pool in pools:
        table.add_row(
            pool.name, pool.type, _paused(pool.paused), _limit(pool.concurrency_limit), pool.description
        )
    _api.console().print(table)


@app.command("inspect")
def inspect_pool(name: Pool, as_json: AsJson = False) -> None:
    """A work pool with its queues, workers and base job template."""
    with _api.client() as client:
        pool = client.read_work_pool(name)
        queues = client.read_work_queues(name)
        workers = client.read_workers(name)
    if as_json:
        _api.print_json({"pool": pool, "queues": queues, "workers": workers})
        return
    _print_pool(pool, queues, workers)


def _print_pool(pool: WorkPool, queues: list[WorkQueue], workers: list[Worker]) -> None:
    out = _api.console()
    out.print(
        Text.assemble(("Work pool ", ""), (pool.name, "bold"), f" ({pool.type}) ", _paused(pool.paused))
    )
    out.print(f"  id:          {pool.id}")
    out.print(f"  limit:       {_limit(pool.concurrency_limit)}")
    if pool.description:
        out.print(f"  description: {pool.description}")
    out.print(f"  created:     {pool.created.astimezone():%Y-%m-%d %H:%M:%S}")
    queue_table = _api.table("Queue", "Priority", "Status", "Limit", title="Queues")
    for queue in queues:
        queue_table.add_row(
            queue.name, str(queue.priority), _paused(queue.paused), _limit(queue.concurrency_limit)
        )
    out.print(queue_table)
    if workers:
        worker_table = _api.table("Worker", "Status", "Running", "Slots", "Last heartbeat", title="Workers")
        for worker in workers:
            status = Text("online", style="green") if worker.online else Text("offline", style="grey50")
            worker_table.add_row(
                worker.name,
                status,
                str(worker.running),
                _limit(worker.slots),
                f"{worker.last_heartbeat.astimezone():%Y-%m-%d %H:%M:%S}",
            )
        out.print(worker_table)
    else:
        out.print("No workers (start one: baton worker start --pool " + pool.name + ")")
    out.print("Base job template:")
    out.print_json(json.dumps(pool.base_job_template))


def _update_pool(name: str, done: str, **fields: Any) -> None:
    from baton_schemas.pools import WorkPoolUpdate

    with _api.client() as client:
        pool = client.update_work_pool(name, WorkPoolUpdate(**fields))
    _api.console().print(f"Work pool {pool.name!r} {done}.")


@app.command("pause")
def pause(name: Pool) -> None:
    """Pause a pool: its runs wait, no worker gets them."""
    _update_pool(name, "paused", paused=True)


@app.command("resume")
def resume(name: Pool) -> None:
    """Resume a paused pool."""
    _update_pool(name, "resumed", paused=False)


@app.command("set-limit")
def set_limit(
    name: Pool,
    limit: Annotated[int, typer.Argument(min=0, help="Runs at once, over all its queues.")],
) -> None:
    """Set how many runs of the pool may be in progress at once."""
    _update_pool(name, f"now runs at most {limit} at once", concurrency_limit=limit)


@app.command("clear-limit")
def clear_limit(name: Pool) -> None:
    """Remove the pool's concurrency limit."""
    _update_pool(name, "has no concurrency limit", concurrency_limit=None)


@app.command("delete")
def delete(name: Pool, yes: Yes = False) -> None:
    """Delete a work pool and its queues."""
    if not yes:
        typer.confirm(f"Delete work pool {name!r} and its queues?", abort=True)
    with _api.client() as client:
        client.delete_work_pool(name)
    _api.console().print(f"Deleted work pool {name!r}.")


# --- queues ---------------------------------------------------------------------------------


@queue_app.command("create")
def queue_create(
    pool: Pool,
    name: Queue,
    priority: Annotated[int, typer.Option(min=1, help="1 is served first.")] = 1,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N runs at once.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a queue in a work pool."""
    from baton_schemas.pools import WorkQueueCreate

    try:
        request = WorkQueueCreate(name=name, priority=priority, concurrency_limit=limit, paused=paused)
    except ValueError as exc:
        _api.fail(f"queue {name!r}: {_first_error(exc)}")
    with _api.client() as client:
        queue = client.create_work_queue(pool, request)
    _api.console().print(f"Created queue {queue.name!r} in work pool {pool!r} (priority {queue.priority}).")


@queue_app.command("ls")
def queue_list(pool: Pool, as_json: AsJson = False) -> None:
    """List a pool's queues, by priority."""
    with _api.client() as client:
        queues = client.read_work_queues(pool)
    if as_json:
        _api.print_json(queues)
        return
    table = _api.table("Queue", "Priority", "Status", "Limit")
    for queue in queues:
        table.add_row(queue.name, str(queue.priority), _paused(queue.paused), _limit(queue.concurrency_limit))
    _api.console().print(table)


def _update_queue(pool: str, name: str, done: str, **fields: Any) -> None:
    from baton_schemas.pools import WorkQueueUpdate

    with _api.client() as client:
        queue = client.update_work_queue(pool, name, WorkQueueUpdate(**fields))
    _api.console().print(f"Queue {queue.name!r} of work pool {pool!r} {done}.")


@queue_app.command("pause")
def queue_pause(pool: Pool, name: Queue) -> None:
    """Pause a queue: its runs wait."""
    _update_queue(pool, name, "paused", paused=True)


@queue_app.command("resume")
def queue_resume(pool: Pool, name: Queue) -> None:
    """Resume a paused queue."""
    _update_queue(pool, name, "resumed", paused=False)


@queue_app.command("update")
def queue_update(
    pool: Pool,
    name: Queue,
    priority: Annotated[int | None, typer.Option(min=1, help="1 is served first.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N runs at once.")] = None,
) -> None:
    """Change a queue's priority or concurrency limit."""
    fields: dict[str, Any] = {}
    if priority is not None:
        fields["priority"] = priority
    if limit is not None:
        fields["concurrency_limit"] = limit
    if not fields:
        raise typer.BadParameter("nothing to change: pass --priority or --limit")
    _update_queue(pool, name, "updated", **fields)


@queue_app.command("delete")
def queue_delete(pool: Pool, name: Queue, yes: Yes = False) -> None:
    """Delete a queue."""
    if not yes:
        typer.confirm(f"Delete queue {name!r} of work pool {pool!r}?", abort=True)
    with _api.client() as client:
        client.delete_work_queue(pool, name)
    _api.console().print(f"Deleted queue {name!r} of work pool {pool!r}.")
