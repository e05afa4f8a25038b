"""`baton concurrency-limit create | ls | inspect | update | enable | disable | reset | delete`:
global concurrency limits and rate limits, through the API.

Code takes their slots with `concurrency("NAME")` and `rate_limit("NAME")`; a limit named
`tag:TAG` caps the task runs carrying the tag TAG.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from baton_schemas.concurrency import ConcurrencyLimit, ConcurrencyLimitUpdate

app = typer.Typer(no_args_is_help=True)  # its help is given where it is added (`baton.cli`)

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="The limit's name, e.g. `warehouse` or `tag:warehouse`.", show_default=False
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Decay = Annotated[
    float | None,
    typer.Option(
        "--slot-decay-per-second",
        min=0,
        help="Make it a rate limit: slots taken by rate_limit() drain at this many per second.",
        show_default=False,
    ),
]


def _time(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _active(active: bool) -> Text:
    return Text("active", style="green") if active else Text("inactive", style="grey50")


def _decay(value: float) -> str:
    return f"{value:g}/s" if value > 0 else "-"


def _said(limit: ConcurrencyLimit) -> str:
    rate = (
        f", {limit.slot_decay_per_second:g} slot(s) decaying per second"
        if limit.slot_decay_per_second
        else ""
    )
    return f"{limit.name!r}: {limit.limit} slot(s){rate}, {'active' if limit.active else 'inactive'}"


@app.command("create")
def create(
    name: Name,
    limit: Annotated[int, typer.Option("--limit", min=0, help="How many slots may be held at once.")],
    slot_decay_per_second: Decay = None,
    disable: Annotated[
        bool, typer.Option("--disable", help="Create it inactive (it limits nothing).")
    ] = False,
) -> None:
    """Create a concurrency limit (with --slot-decay-per-second, a rate limit)."""
    from baton_schemas.concurrency import ConcurrencyLimitCreate

    try:
        request = ConcurrencyLimitCreate(
            name=name, limit=limit, slot_decay_per_second=slot_decay_per_second or 0.0, active=not disable
        )
    except ValueError as exc:  # pydantic's ValidationError
        _api.fail(f"not a valid concurrency limit: {exc}")
    with _api.client() as client:
        made = client.create_concurrency_limit(request)
    _api.console().print(f"Created concurrency limit {_said(made)}.", soft_wrap=True)


@app.command("ls")
def list_limits(as_json: AsJson = False) -> None:
    """The concurrency limits, by name, with the slots in use."""
    with _api.client() as client:
        found = client.read_concurrency_limits()
    if as_json:
        _api.print_json(found)
        return
    if not found:
        _api.console().print("No concurrency limits.")
        return
    table = _api.table("Name", "Limit", "Slots", "Decay", "Active", "Denied", "Updated")
    for item in found:
        table.add_row(
            item.name,
            str(item.limit),
            str(item.active_slots),
            _decay(item.slot_decay_per_second),
            _active(item.active),
            str(item.denied_slots),
            _time(item.updated),
        )
    _api.console().print(table)


@app.command("inspect")
def inspect(name: Name, as_json: AsJson = False) -> None:
    """A concurrency limit and the leases holding its slots now."""
    with _api.client() as client:
        found = client.read_concurrency_limit(name)
    if as_json:
        _api.print_json(found)
        return
    out = _api.console()
    out.print(Text.assemble((found.name, "bold"), f"  ({found.id})"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, text in (
        ("Limit", str(found.limit)),
        ("Active", _active(found.active)),
        ("Slots in use", f"{found.active_slots} ({found.held_slots} held by leases)"),
        ("Slot decay", _decay(found.slot_decay_per_second)),
        ("Denied slots", str(found.denied_slots)),
        ("Created", _time(found.created)),
        ("Updated", _time(found.updated)),
    ):
        grid.add_row(label, text)
    out.print(grid)
    leases = found.leases or []
    if not leases:
        out.print("No leases.")
        return
    table = _api.table("Lease", "Slots", "Holder", "Expires", title="Leases")
    for lease in leases:
        holder = f"{lease.holder.type} {lease.holder.id or ''}".rstrip() if lease.holder else "-"
        table.add_row(str(lease.id), str(lease.slots), holder, _time(lease.expires))
    out.print(table)


def _update(name: str, update: ConcurrencyLimitUpdate, verb: str) -> None:
    with _api.client() as client:
        changed = client.update_concurrency_limit(name, update)
    _api.console().print(f"{verb} concurrency limit {_said(changed)}.", soft_wrap=True)


@app.command("update")
def update(
    name: Name,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=0, help="How many slots may be held at once.", show_default=False),
    ] = None,
    slot_decay_per_second: Decay = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--enable/--disable", help="Turn the limit on, or off (it limits nothing).", show_default=False
        ),
    ] = None,
) -> None:
    """Change a concurrency limit: its size, its slot decay, whether it is active."""
    from baton_schemas.concurrency import ConcurrencyLimitUpdate

    if limit is None and slot_decay_per_second is None and active is None:
        _api.fail("nothing to update: give --limit, --slot-decay-per-second, --enable or --disable")
    _update(
        name,
        ConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=slot_decay_per_second, active=active),
        "Updated",
    )


@app.command("enable")
def enable(name: Name) -> None:
    """Turn a concurrency limit on."""
    from baton_schemas.concurrency import ConcurrencyLimitUpdate

    _update(name, ConcurrencyLimitUpdate(active=True), "Enabled")


@app.command("disable")
def disable(name: Name) -> None:
    """Turn a concurrency limit off: it limits nothing until enabled."""
    from baton_schemas.concurrency import ConcurrencyLimitUpdate

    _update(name, ConcurrencyLimitUpdate(active=False), "Disabled")


@app.command("reset")
def reset(name: Name) -> None:
    """Free every slot of a limit: its leases end (their holders are told when they renew)."""
    with _api.client() as client:
        found = client.reset_concurrency_limit(name)
    _api.console().print(f"Reset concurrency limit {found.name!r}: all {found.limit} slot(s) free.")


@app.command("delete")
def delete(name: Name) -> None:
    """Delete a concurrency limit."""
    with _api.client() as client:
        client.delete_concurrency_limit(name)
    _api.console().print(f"Deleted concurrency limit {name!r}.")
