"""`baton audit ls`: the changes made through the API, and the key that made each (admin key)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from . import _api

if TYPE_CHECKING:
    from baton_schemas.access import AuditEntry

app = typer.Typer(no_args_is_help=True)


@app.command("ls")
def list_entries(
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Only changes by the key of this name.")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only changes at or after this time (ISO 8601).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many entries at most.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The most recent changes, newest first: when, which key, what request, with what result."""
    entries: list[AuditEntry] = []
    with _api.client() as client:
        cursor: str | None = None
        while len(entries) < limit:
            page = client.read_audit(
                key_name=key,
                since=since.isoformat() if since else None,
                limit=min(1000, limit - len(entries)),
                cursor=cursor,
            )
            entries += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    if as_json:
        _api.print_json(entries)
        return
    console = _api.console()
    if not entries:
        console.print("No changes recorded.")
        return
    table = _api.table("When", "Key", "Change", "Status", "Detail")
    for entry in entries:
        who = entry.key_name or ("server CLI" if entry.origin == "cli" else "no key")
        detail = " ".join(f"{k}={v}" for k, v in entry.detail.items())
        table.add_row(
            entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            who,
            f"{entry.method} {entry.path}",
            str(entry.status or ""),
            detail,
        )
    console.print(table)
