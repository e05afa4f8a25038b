"""`baton server ...`, `baton api-key ...`, `baton schemas ...`: commands that need server code.

baton_server is imported inside each command, so the SDK's import path stays free of it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .._event_loop import loop_factory

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


@api_key_app.callback()
def _api_key_commands() -> None:
    require_server_extra()


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


@app.command("start")
def start(
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Run only this service (repeatable): api, tracker, scheduler."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="API bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
) -> None:
    """Start the server: every service in one process unless --service picks some."""
    from baton_server.server import SERVICES, serve
    from baton_server.settings import ServerSettings

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
    except OSError as exc:
        console.print(f"[red]could not start:[/red] {exc}")
        raise typer.Exit(1) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database if needed and apply pending migrations."""
    from baton_server.db.migrate import ensure_database, upgrade_database
    from baton_server.settings import ServerSettings

    settings = ServerSettings()

    async def run() -> list[str]:
        await ensure_database(settings.database_url)
        return [f"{m.version:04d}_{m.name}" for m in await upgrade_database(settings.database_url)]

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scope: Annotated[str, typer.Option(help="read, write or admin.")] = "write",
    save: Annotated[
        bool, typer.Option(help="Also write it as BATON_API_KEY into $BATON_HOME/profile.env.")
    ] = False,
) -> None:
    """Create an API key and print it (it is shown only once)."""
    import asyncpg

    from baton_server.api.auth import Scope, create_api_key
    from baton_server.db.migrate import ensure_database, upgrade_database
    from baton_server.settings import ServerSettings

    try:
        parsed = Scope.parse(scope)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = ServerSettings()

    async def run() -> str:
        await ensure_database(settings.database_url)
        await upgrade_database(settings.database_url)
        conn = await asyncpg.connect(settings.database_url)
        try:
            _, secret = await create_api_key(conn, name=name, scope=parsed)
            return secret
        finally:
            await conn.close()

    secret = asyncio.run(run())
    if save:
        from baton._settings import baton_home

        profile = baton_home() / "profile.env"
        profile.parent.mkdir(parents=True, exist_ok=True)
        kept = [
            line
            for line in (profile.read_text().splitlines() if profile.exists() else [])
            if not line.startswith("BATON_API_KEY=")
        ]
        profile.write_text("\n".join([*kept, f"BATON_API_KEY={secret}"]) + "\n")
        console.print(f"saved to {profile}")
    typer.echo(secret)


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("schemas"),
) -> None:
    """Write a JSON Schema per broker message and an AsyncAPI 3.0 document."""
    from baton_schemas.export import export

    for path in export(out):
        console.print(f"wrote {path}")
