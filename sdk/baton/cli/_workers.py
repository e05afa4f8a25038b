"""`baton worker start` and `baton worker ls`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from .._transport import RequestRejected, TransportUnavailable
from . import _api

app = typer.Typer(no_args_is_help=True)


@app.command("start")
def start(
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool to serve (created if missing).")],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Serve only this queue (repeatable).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-l", min=1, help="At most N flow runs at once.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="The worker's name (default host-pid).")
    ] = None,
    drain_seconds: Annotated[
        float | None, typer.Option(help="On SIGTERM, let running flows finish for this long.")
    ] = None,
    heartbeat_seconds: Annotated[float | None, typer.Option(help="Between heartbeats.")] = None,
    lease_seconds: Annotated[
        float | None, typer.Option(help="A run is Crashed this long after the last heartbeat.")
    ] = None,
    cancel_grace_seconds: Annotated[
        float | None, typer.Option(help="Between SIGTERM and SIGKILL when a run is cancelled.")
    ] = None,
    prestart: Annotated[
        int | None, typer.Option(min=0, help="Keep N pre-started flow-run processes ready.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port.")
    ] = None,
    log_level: Annotated[
        str, typer.Option(envvar="BATON_LOG_LEVEL", help="The worker's log level.")
    ] = "INFO",
) -> None:
    """Serve a work pool: claim its runs and run each in a process, until SIGTERM / Ctrl-C.

    The first signal stops taking runs and lets running ones finish for --drain-seconds, then
    stops them (Crashed, "worker shut down"); a second signal stops them at once."""
    import asyncio

    from .._event_loop import loop_factory
    from .._worker._serve import run_worker
    from .._worker._settings import WorkerSettings
    from .._worker._worker import configure_logging

    options: dict[str, Any] = {
        "pool": pool,
        "queues": queue or None,
        "limit": limit,
        "name": name,
        "drain_seconds": drain_seconds,
        "heartbeat_seconds": heartbeat_seconds,
        "lease_seconds": lease_seconds,
        "cancel_grace_seconds": cancel_grace_seconds,
        "prestart": prestart,
        "metrics_port": metrics_port,
    }
    try:
        settings = WorkerSettings(**{k: v for k, v in options.items() if v is not None})
    except ValueError as exc:
        _api.fail(str(exc))
    try:
        configure_logging(log_level)
    except ValueError as exc:
        _api.fail(str(exc))
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(run_worker(settings))
    except TransportUnavailable as exc:
        _api.fail(f"cannot reach Baton: {exc}")
    except RequestRejected as exc:
        _api.fail(_api.rejection(exc))
    except RuntimeError as exc:
        _api.fail(str(exc))


@app.command("ls")
def ls(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Only this pool's workers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Workers: name, pool, online/offline, last heartbeat, runs running."""
    with _api.client() as client:
        pools = [pool] if pool else [p.name for p in client.read_work_pools()]
        workers = [worker for name in pools for worker in client.read_workers(name)]
    if as_json:
        _api.print_json(workers)
        return
    out = _api.console()
    if not workers:
        out.print(
            f"No workers in pool {pool!r} (start one: baton worker start --pool {pool})"
            if pool
            else "No workers (start one: baton worker start --pool POOL)"
        )
        return
    now = datetime.now(UTC)
    table = _api.table("Name", "Pool", "Status", "Last heartbeat", "Running", "ID")
    for worker in sorted(workers, key=lambda w: (w.pool_name, not w.online, w.name)):
        ago = max(0.0, (now - worker.last_heartbeat).total_seconds())
        status = Text("online", style="green") if worker.online else Text("offline", style="grey50")
        running = f"{worker.running}/{worker.slots}" if worker.slots is not None else str(worker.running)
        table.add_row(worker.name, worker.pool_name, status, f"{_ago(ago)} ago", running, worker.id)
    out.print(table)


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
