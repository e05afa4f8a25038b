"""`baton spool ls | flush`: what flow runs could not deliver before their process exited.

A flow run started while the server was unreachable runs locally and, at exit, writes what it
could not send under `$BATON_HOME/spool`. Any Baton process that reaches the server later
delivers it; `baton spool flush` does it now.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from . import _api

if TYPE_CHECKING:
    from .._reporting._spool import FlushResult

app = typer.Typer(no_args_is_help=True)


async def _flush() -> FlushResult:
    from .._reporting._spool import flush_spool
    from .._settings import ClientSettings
    from .._transport import Transport

    settings = ClientSettings.load()
    transport: Transport
    if settings.api_url:
        from .._transport.http import BatonClient

        transport = BatonClient(settings.api_url, settings.api_key, timeout=settings.request_timeout)
    elif settings.broker_url:
        from .._transport.amqp import AmqpTracker

        transport = await AmqpTracker.connect(settings.broker_url, connect_timeout=settings.request_timeout)
    else:
        _api.fail("set BATON_API_URL (or BATON_BROKER_URL) to deliver the spool")
    try:
        return await flush_spool(transport)
    finally:
        await transport.close()


@app.command("flush")
def flush() -> None:
    """Deliver every spooled request to the server now (idempotent: delivering twice is safe)."""
    from .._transport import TransportError

    try:
        done = asyncio.run(_flush())
    except TransportError as exc:
        _api.fail(f"the server is still unreachable; the spool is kept: {exc}")
    _api.console().print(
        f"Delivered {done.requests} request(s) from {done.files} file(s)"
        + (f"; {done.refused} refused by the server" if done.refused else "")
        + (f"; {done.left} file(s) left (being delivered elsewhere)" if done.left else "")
    )


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False) -> None:
    """The spooled files, oldest first, with how many requests each holds."""
    from .._reporting._spool import spooled_files

    files = [(str(path), len(path.read_bytes().splitlines())) for path in spooled_files()]
    if as_json:
        _api.print_json([{"path": path, "requests": n} for path, n in files])
        return
    for path, n in files:
        _api.console().print(f"{path}  {n} request(s)")
    if not files:
        _api.console().print("Nothing spooled.")
