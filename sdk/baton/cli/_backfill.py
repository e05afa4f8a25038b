"""`baton deployment backfill FLOW/DEPLOYMENT --start ... --end ... [--dry-run]`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from . import _api


def _when(text: str, option: str) -> datetime:
    """An ISO date or date and time; without an offset, in this machine's zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        _api.fail(f"{option} {text!r} is not a date or time: use 2026-11-01 or 2026-11-01T02:00[+01:00]")
    return value if value.tzinfo is not None else value.astimezone()


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        name: Annotated[str, typer.Argument(metavar="NAME", help="flow-name/deployment-name, or its id.")],
        start: Annotated[str, typer.Option("--start", help="From this date or time (inclusive).")],
        end: Annotated[str, typer.Option("--end", help="To this date or time (exclusive).")],
        schedule: Annotated[
            list[str] | None, typer.Option("--schedule", help="Only this schedule (slug); repeatable.")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List the slots; make no run.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Make the runs of a past range's slots (they start now). Run twice, it makes nothing new.

        Dates without an offset are in this machine's time zone; so are the times shown."""
        from pydantic import ValidationError

        from baton_schemas.backfill import BackfillCreate

        from .._deployments import read_deployment

        try:
            request = BackfillCreate(
                start=_when(start, "--start"), end=_when(end, "--end"), schedules=schedule, dry_run=dry_run
            )
        except ValidationError as exc:
            _api.fail("; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors()))
        with _api.client() as client:
            deployment = read_deployment(client, name)
            result = client.backfill_deployment(deployment.id, request)
        if as_json:
            _api.print_json(result)
            return
        zone = datetime.now().astimezone().tzname()
        table = _api.table(f"Slot ({zone})", "Schedule", "Flow run", "Note")
        for slot in result.slots:
            note = (
                "would be made"
                if dry_run and slot.flow_run_id is None
                else ("made" if slot.created else "had one")
            )
            table.add_row(
                slot.slot.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                slot.schedule_slug or str(slot.schedule_id),
                str(slot.flow_run_id or ""),
                note,
            )
        out = _api.console()
        out.print(table)
        label = f"{deployment.flow_name}/{deployment.name}"
        if dry_run:
            out.print(
                f"Dry run: {len(result.slots)} slots of {label!r}; {result.existing} have a run already."
            )
        else:
            out.print(f"Backfilled {label!r}: {result.created} runs made, {result.existing} slots had one.")
