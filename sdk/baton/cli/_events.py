"""`baton event ls | stream | emit`: read, follow and send events.

Name patterns: `*` matches any run of characters, so `order.*` is every event under `order.`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _api

if TYPE_CHECKING:
    from .._events._client import EventsClient

app = typer.Typer(no_args_is_help=True, help="Events: list, follow, emit.")

NameOpt = Annotated[
    list[str] | None, typer.Option("--name", "-n", help="Event name pattern (repeatable); `*` is a wildcard.")
]
ResourceOpt = Annotated[
    list[str] | None, typer.Option("--resource", "-r", help="KEY=PATTERN of the resource (repeatable).")
]
RelatedOpt = Annotated[
    list[str] | None,
    typer.Option("--related", help="A related resource: KEY=PATTERN[,KEY=PATTERN] or an id pattern."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str | None, option: str) -> datetime | None:
    """`1h`, `30m`, `2d` ago, or an ISO time."""
    if text is None:
        return None
    found = _DURATION.match(text.strip())
    if found:
        return datetime.now(UTC) - timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use a duration (30s, 10m, 1h, 2d) or an ISO time", param_hint=option
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _params(name: list[str] | None, resource: list[str] | None, related: list[str] | None) -> dict[str, Any]:
    return {"name": name or [], "resource": resource or [], "related": related or []}


@contextlib.contextmanager
def _client() -> Iterator[EventsClient]:
    from .._events._client import EventsClient
    from .._settings import ClientSettings

    settings = ClientSettings.load()
    if not settings.api_url:
        _api.fail("BATON_API_URL is not set (e.g. export BATON_API_URL=http://127.0.0.1:4200/api)")
    with (
        _api.errors(settings.api_url, has_key=bool(settings.api_key)),
        EventsClient(settings.api_url, settings.api_key, timeout=settings.request_timeout) as client,
    ):
        yield client


def _resource_id(event: dict[str, Any]) -> str:
    return str(event.get("resource", {}).get("baton.resource.id", ""))


def _when(value: str) -> str:
    return f"{datetime.fromisoformat(value).astimezone():%Y-%m-%d %H:%M:%S}"


@app.command("ls")
def list_events(
    name: NameOpt = None,
    resource: ResourceOpt = None,
    related: RelatedOpt = None,
    since: Annotated[str | None, typer.Option(help="Occurred since: 1h, 30m, 2d, or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Occurred before: a duration ago or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List stored events, newest first."""
    params = _params(name, resource, related)
    for key, value in (("since", parse_when(since, "--since")), ("until", parse_when(until, "--until"))):
        if value is not None:
            params[key] = value.isoformat()
    events: list[dict[str, Any]] = []
    with _client() as client:
        cursor = None
        while len(events) < limit:
            page, cursor = client.read_events(
                {**params, "limit": min(1000, limit - len(events)), "cursor": cursor}
            )
            events.extend(page)
            if cursor is None:
                break
    if as_json:
        for event in events:
            typer.echo(json.dumps(event))
        return
    table = _api.table("Occurred", "Event", "Resource", "ID")
    for event in events:
        table.add_row(_when(event["occurred"]), event["event"], _resource_id(event), event["id"])
    _api.console().print(table)


@app.command("stream")
def stream(
    name: NameOpt = None,
    resource: ResourceOpt = None,
    related: RelatedOpt = None,
    since: Annotated[str | None, typer.Option(help="First, what arrived since: 10m, or an ISO time.")] = None,
    as_json: AsJson = False,
) -> None:
    """Follow events as they are stored (Ctrl-C to stop)."""
    params = _params(name, resource, related)
    start = parse_when(since, "--since")
    if start is not None:
        params["since"] = start.isoformat()
    out = _api.console()
    with _client() as client:
        for event in client.stream_events(params):
            if as_json:
                typer.echo(json.dumps(event), nl=True)
            else:
                out.print(
                    f"{_when(event['occurred'])}  {event['event']}  {_resource_id(event)}", soft_wrap=True
                )


@app.command("emit")
def emit(
    event: Annotated[str, typer.Argument(help="The event's name, e.g. order.created.", show_default=False)],
    resource: Annotated[
        list[str] | None,
        typer.Option("--resource", "-r", help="KEY=VALUE label (repeatable); baton.resource.id needed."),
    ] = None,
    related: Annotated[
        list[str] | None,
        typer.Option(
            "--related", help="A related resource: KEY=VALUE[,KEY=VALUE] with id and role (repeatable)."
        ),
    ] = None,
    payload: Annotated[str | None, typer.Option("--payload", "-p", help="A JSON object.")] = None,
) -> None:
    """Send one event (POST /api/events)."""
    labels = {k: str(v) for k, v in _api.parse_pairs(resource, "--resource").items()}
    related_resources = [
        {k: str(v) for k, v in _api.parse_pairs(item.split(","), "--related").items()}
        for item in related or ()
    ]
    body = {
        "event": event,
        "resource": labels,
        "related": related_resources,
        "payload": _api.parse_object(payload, "--payload"),
    }
    with _client() as client:
        (event_id,) = client.emit([body])
    _api.console().print(f"Emitted {event} ({event_id}).")
