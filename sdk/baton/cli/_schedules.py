"""`baton deployment schedule ...` and `baton deployment pause|resume`: a deployment's schedules,
and its next run times shown in the user's own time zone (TZ, else the machine's)."""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from baton_schemas.deployments import Deployment
    from baton_schemas.schedules import DeploymentSchedule, UpcomingSlots

    from .._transport.http import SyncBatonClient

app = typer.Typer(no_args_is_help=True, help="A deployment's schedules: list, pause, resume, delete.")

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="flow-name/deployment-name, or the deployment's id.", show_default=False
    ),
]
Schedule = Annotated[
    str,
    typer.Argument(metavar="SCHEDULE", help="The schedule's slug (cron-1, ...) or id.", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def local_zone() -> tuple[tzinfo, str]:
    """The zone to show times in, and its name: TZ when it names an IANA zone, else the machine's."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    here = datetime.now().astimezone().tzinfo
    assert here is not None
    return here, here.tzname(None) or "local time"


def local_time(moment: datetime, zone: tzinfo) -> str:
    shown = moment.astimezone(zone)
    return f"{shown:%Y-%m-%d %H:%M:%S} {shown.tzname()}"


def schedule_summary(item: DeploymentSchedule) -> str:
    spec = item.schedule
    if spec.kind == "cron":
        what = f"cron {spec.cron}" + ("" if spec.day_or else " (day and weekday)")
    elif spec.kind == "interval":
        what = f"every {_api.duration(spec.interval_seconds)}"
        if spec.anchor_date is not None:
            what += f" from {spec.anchor_date.isoformat()}"
    else:
        what = "rrule " + " ".join(spec.rrule.split())
    return f"{what} in {spec.timezone}"


def print_upcoming(deployment: Deployment, upcoming: list[UpcomingSlots]) -> None:
    """Each schedule and its next run times, in the user's zone."""
    zone, zone_name = local_zone()
    out = _api.console()
    if not deployment.schedules:
        out.print("No schedules.")
        return
    table = _api.table("Schedule", "When", "Status", f"Next runs ({zone_name})")
    slots = {u.slug: u for u in upcoming}
    for item in deployment.schedules:
        status = Text("active", style="green") if item.active else Text("paused", style="yellow")
        if deployment.paused:
            status = Text("deployment paused", style="yellow")
        found = slots.get(item.slug)
        times = [local_time(t, zone) for t in found.starts] if found else []
        table.add_row(
            item.slug or "", schedule_summary(item), status, "\n".join(times) or "none: no time after now"
        )
    out.print(table)
    out.print(Text(f"Times are in {zone_name} (set TZ to see another zone).", style="grey50"))


def _deployment(client: SyncBatonClient, name: str) -> Deployment:
    from .._deployments import read_deployment

    return read_deployment(client, name)


@app.command("ls")
def list_schedules(name: Name, as_json: AsJson = False) -> None:
    """List a deployment's schedules with their next 5 run times."""
    with _api.client() as client:
        deployment = _deployment(client, name)
        upcoming = client.read_upcoming_slots(deployment.id, 5)
    if as_json:
        _api.print_json(deployment.schedules)
        return
    print_upcoming(deployment, upcoming)


@app.command("pause")
def pause_schedule(name: Name, schedule: Schedule) -> None:
    """Pause one schedule: it makes no new runs, and those it made that have not started go."""
    _set_active(name, schedule, active=False)


@app.command("resume")
def resume_schedule(name: Name, schedule: Schedule) -> None:
    """Resume one schedule."""
    _set_active(name, schedule, active=True)


def _set_active(name: str, schedule: str, *, active: bool) -> None:
    with _api.client() as client:
        deployment = _deployment(client, name)
        item = client.set_schedule_active(deployment.id, schedule, active)
    verb = "Resumed" if active else "Paused"
    _api.console().print(f"{verb} schedule {item.slug!r} of {deployment.flow_name}/{deployment.name}.")


@app.command("delete")
def delete_schedule(
    name: Name,
    schedule: Schedule,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete one schedule (a later `baton deploy` that still lists it brings it back)."""
    with _api.client() as client:
        deployment = _deployment(client, name)
        label = f"{deployment.flow_name}/{deployment.name}"
        if not yes:
            typer.confirm(f"Delete schedule {schedule!r} of {label!r}?", abort=True)
        client.delete_schedule(deployment.id, schedule)
    _api.console().print(f"Deleted schedule {schedule!r} of {label}.")


def set_paused(name: str, *, paused: bool) -> None:
    with _api.client() as client:
        deployment = client.set_deployment_paused(_deployment(client, name).id, paused)
    label = f"{deployment.flow_name}/{deployment.name}"
    if paused:
        _api.console().print(f"Paused deployment {label}: no new scheduled runs until it is resumed.")
    else:
        _api.console().print(f"Resumed deployment {label}.")
