"""`baton server ...`, `baton api-key ...`, `baton schemas ...`: commands that need server code.

baton_server is imported inside each command, so the SDK's import path stays free of it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .._event_loop import loop_factory
from .._log_format import install
from . import _api

app = typer.Typer(no_args_is_help=True, help="Run and manage the Baton server.")
db_app = typer.Typer(no_args_is_help=True, help="The server's database.")
app.add_typer(db_app, name="db")
api_key_app = typer.Typer(no_args_is_help=True, help="API keys.")
schemas_app = typer.Typer(no_args_is_help=True, help="Message schemas for other systems.")

console = Console(stderr=True)

# what `pip install 'baton[server]'` adds to `pip install baton` (pyproject.toml's server extra)
SERVER_EXTRA = ("fastapi", "uvicorn", "asyncpg", "jsonschema")


def require_server_extra() -> None:
    """Stop with one line when the server's packages are not installed."""
    missing = [name for name in SERVER_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        hint = "pip install 'baton[server]'"
        typer.echo(f"baton: this command runs server code: {hint} (missing: {', '.join(missing)})", err=True)
        raise typer.Exit(1)


@app.callback()
def _server_commands() -> None:
    require_server_extra()


def _configure_logging(level: str) -> None:
    """The server's records, uvicorn's and aio-pika's in one format (BATON_LOG_FORMAT)."""
    try:
        install("server", level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command("start")
def start(
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            "-s",
            help="Run only this service (repeatable): api, tracker, scheduler, events, router.",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="API bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
) -> None:
    """Start the server: every service in one process unless --service picks some.

    The database (BATON_DATABASE_URL) must exist; pending migrations are applied. A new one is
    made by `baton server db upgrade --create`, never by surprise (a typo in the URL would start
    a fresh, empty Baton)."""
    from baton_server.db.migrate import DatabaseMissing
    from baton_server.server import SERVICES, serve
    from baton_server.settings import ServerSettings

    from .._amqp import TlsRefused
    from .._transport._installation import OtherInstallation

    settings = ServerSettings()
    if host:
        settings.api_host = host
    if port:
        settings.api_port = port
    _configure_logging(settings.log_level)
    names = tuple(service or SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}")
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve(settings, names))
    except OtherInstallation as exc:
        typer.echo(f"baton server: could not start: {exc}", err=True)  # one line, unwrapped
        raise typer.Exit(1) from exc
    except (OSError, DatabaseMissing, TlsRefused) as exc:
        console.print(f"[red]could not start:[/red] {exc}")
        raise typer.Exit(1) from exc


@db_app.command("upgrade")
def db_upgrade(
    create: Annotated[
        bool, typer.Option("--create", help="Create the database first if it does not exist.")
    ] = False,
) -> None:
    """Apply pending migrations to the database of BATON_DATABASE_URL (which must exist, unless
    --create)."""
    from baton_server.db.migrate import DatabaseMissing, create_database, upgrade_database
    from baton_server.settings import ServerSettings

    settings = ServerSettings()

    async def run() -> tuple[bool, list[str]]:
        created = await create_database(settings.database_url) if create else False
        applied = await upgrade_database(settings.database_url)
        return created, [f"{m.version:04d}_{m.name}" for m in applied]

    try:
        created, applied = asyncio.run(run())
    except DatabaseMissing as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if created:
        console.print("created the database")
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


_SCOPES_HELP = """What each scope allows (a key holds any set of them):

- **read**: read everything (runs, logs, deployments, pools, workers).
- **events**: emit events, nothing else (for other systems).
- **run**: start, cancel and retry runs of existing deployments, backfill; read the deployments
  and runs it starts.
- **worker**: claim runs and report their states, task runs, logs and heartbeats; read its work
  pool and queues, and the runs it executes.
- **deploy**: create or change deployments, schedules, automations, webhooks, work pools and
  queues, variables, and job variables of runs: this decides what code workers execute.
- **admin**: everything, including API keys, dead-letter replay and the audit log.

`write` is the old name of read + events + run + worker + deploy (what a write key could do
before scopes were split)."""


def _audit_cli(conn: Any, command: str, detail: dict[str, Any]) -> Any:
    from baton_server.db.audit import AuditRecord, insert_audit

    return insert_audit(conn, [AuditRecord(method="CLI", path=command, origin="cli", detail=detail)])


@api_key_app.command(
    "create", help=f"Create an API key and print it (it is shown only once).\n\n{_SCOPES_HELP}"
)
def api_key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="read, events, run, worker, deploy or admin (repeatable: --scope run --scope read).",
        ),
    ],
    save: Annotated[
        bool, typer.Option(help="Also write it as BATON_API_KEY into $BATON_HOME/profile.env.")
    ] = False,
) -> None:
    require_server_extra()  # the first key is made straight in the database
    import asyncpg

    from baton_server.api.auth import create_api_key, parse_scopes, scope_list
    from baton_server.db.migrate import DatabaseMissing, upgrade_database
    from baton_server.settings import ServerSettings

    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from exc
    if any(s.strip().lower() == "write" for s in scope):
        console.print("note: `write` is read, events, run, worker and deploy; prefer naming the scopes")
    settings = ServerSettings()

    async def run() -> str:
        await upgrade_database(settings.database_url)
        conn = await asyncpg.connect(settings.database_url)
        try:
            async with conn.transaction():
                key, secret = await create_api_key(conn, name=name, scopes=scopes)
                await _audit_cli(
                    conn,
                    "baton api-key create",
                    {"key_id": str(key.id), "name": name, "scopes": scope_list(scopes)},
                )
            return secret
        finally:
            await conn.close()

    try:
        secret = asyncio.run(run())
    except DatabaseMissing as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if save:
        from ._config import profile_path, read_profile, write_profile

        profile = profile_path()
        write_profile(profile, {**read_profile(profile), "BATON_API_KEY": secret})
        console.print(f"saved to {profile}")
    typer.echo(secret)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


@api_key_app.command("ls")
def api_key_ls(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List API keys (never their secrets), over the API with an admin key (BATON_API_KEY)."""
    with _api.client() as client:
        keys = client.read_api_keys(include_revoked=all_keys)
    table = _api.table("ID", "Name", "Prefix", "Scopes", "Created", "Revoked")
    for key in keys:
        revoked = _when(key.revoked_at) if key.revoked_at else ("yes" if key.revoked else "")
        table.add_row(str(key.id), key.name, key.prefix, " ".join(key.scopes), _when(key.created), revoked)
    _api.console().print(table)


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `baton api-key ls`).", show_default=False)],
) -> None:
    """Revoke an API key, over the API with an admin key. Every server stops accepting it within
    10 seconds (twice BATON_API_KEY_REFRESH_SECONDS)."""
    try:
        parsed = uuid.UUID(key_id)
    except ValueError as exc:
        raise typer.BadParameter(f"{key_id!r} is not a key id") from exc
    with _api.client() as client:
        client.revoke_api_key(parsed)
    _api.console().print(f"Revoked API key {parsed}.")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("schemas"),
) -> None:
    """Write a JSON Schema per broker message and an AsyncAPI 3.0 document."""
    from baton_schemas.export import export

    for path in export(out):
        console.print(f"wrote {path}")
