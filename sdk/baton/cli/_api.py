"""What every API command of the CLI shares: consoles, a client of the configured server, and
one readable line on stderr (exit code 1) for anything that goes wrong, never a traceback.

The server is `BATON_API_URL` with the key `BATON_API_KEY` (or `$BATON_HOME/profile.env`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._exceptions import BatonError
from .._transport import RequestRejected, TransportUnavailable

if TYPE_CHECKING:
    from baton_schemas.runs import FlowRun, TaskRun
    from baton_schemas.states import State

    from .._transport.http import SyncBatonClient

STATE_STYLES = {
    "SCHEDULED": "yellow",
    "PENDING": "grey70",
    "RUNNING": "blue",
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "bold red",
    "CANCELLED": "grey50",
    "CANCELLING": "grey50",
    "PAUSED": "yellow",
}


def console(stderr: bool = False) -> Console:
    # Piped output keeps whole lines (rich would fold tables at 80 columns). No markup: names
    # and messages may hold brackets; styles come from Text.
    wide = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    return Console(stderr=stderr, width=wide, highlight=False, markup=False)


def fail(message: str) -> NoReturn:
    console(stderr=True).print(Text(f"error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(1)


WRAPPED = ("Name", "Message", "Description", "Detail", "Reason", "Flow")
RIGHT = ("#", "Runs", "Duration", "Priority", "Limit", "Slots", "Running", "Decay", "Denied")


def duration(value: float) -> str:
    """Seconds as a person writes them: 90 -> "1m30s", 3600 -> "1h", 2.5 -> "2.5s"."""
    whole = int(value)
    if whole != value or whole < 60:
        return f"{value:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def table(*columns: str, title: str | None = None) -> Table:
    """A listing in the CLI's one table style: no box, bold headers in title case, one row per
    line (free text may wrap), counts aligned right. Every listing is made here."""
    grid = Table(box=None, pad_edge=False, header_style="bold", title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, no_wrap=column not in WRAPPED, justify="right" if column in RIGHT else "left")
    return grid


def state_text(state: State) -> Text:
    return Text(state.name, style=STATE_STYLES.get(state.type.value, ""))


def print_json(value: Any) -> None:
    """A model, or a list or dict of them, as indented JSON on stdout."""
    typer.echo(json.dumps(_plain(value), indent=2, default=str))


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (`3`, `true`, `[1, 2]`, `"x"`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list[str] | None, option: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """`["name=Ford", "count=3"]` -> `{"name": "Ford", "count": 3}`. A key whose JSON Schema
    (`schema`, of an object) says it is a string keeps its text: `label=123` gives `"123"`."""
    values: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: use KEY=VALUE", param_hint=option)
        key = key.strip()
        values[key] = value if _is_string(schema, key) else parse_value(value)
    return values


def _is_string(schema: dict[str, Any] | None, key: str) -> bool:
    prop = ((schema or {}).get("properties") or {}).get(key)
    if not isinstance(prop, dict):
        return False
    kinds = prop.get("type")
    if kinds is None and isinstance(prop.get("anyOf"), list):  # `str | None`
        kinds = [branch.get("type") for branch in prop["anyOf"] if isinstance(branch, dict)]
    if isinstance(kinds, str):
        kinds = [kinds]
    return isinstance(kinds, list) and "string" in kinds and not set(kinds) - {"string", "null"}


def parse_object(text: str | None, option: str) -> dict[str, Any]:
    """A JSON object given as an option's value."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


@contextlib.contextmanager
def errors(url: str | None = None, *, has_key: bool = True) -> Iterator[None]:
    """Turn what the API, the network or the user's input can raise into one line and exit 1."""
    import httpx

    where = url or "the Baton server"
    try:
        yield
    except TransportUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
            fail(f"cannot reach the Baton server at {where}: is it running? ({cause})")
        fail(f"the Baton server at {where} is unavailable: {exc}")
    except RequestRejected as exc:
        fail(rejection(exc, url, has_key=has_key))
    except BatonError as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:  # e.g. a malformed URL
        fail(f"cannot talk to {where}: {exc}")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def rejection(exc: Any, url: str | None = None, *, has_key: bool = True) -> str:
    """A 4xx answer as a sentence."""
    status, detail = exc.status, exc.detail
    if status == 401:
        hint = "BATON_API_KEY is not a valid key" if has_key else "set BATON_API_KEY"
        return f"the server refused the request: {detail} ({hint}; `baton api-key create` makes one)"
    if status == 403:
        return f"this API key is not allowed to do that: {detail}"
    if status == 404 and detail == "Not Found":  # no such route: not Baton's API?
        return f"not found at {url or 'BATON_API_URL'}: is it the API's base URL (ending in /api)?"
    if status in (404, 409, 422):  # the server names what is missing, taken or invalid
        return str(detail)
    return f"the server refused the request ({status}: {detail})"


@contextlib.contextmanager
def client() -> Iterator[SyncBatonClient]:
    """A client of the configured server, inside `errors()`."""
    from .._settings import ClientSettings
    from .._transport.http import SyncBatonClient

    settings = ClientSettings.load()
    url = settings.api_url
    if not url:
        fail("BATON_API_URL is not set (e.g. export BATON_API_URL=http://127.0.0.1:4200/api)")
    with (
        errors(url, has_key=bool(settings.api_key)),
        SyncBatonClient(url, settings.api_key, timeout=settings.request_timeout) as api,
    ):
        yield api


def find_flow_run(client: SyncBatonClient, text: str) -> FlowRun:
    """A flow run as a person types it: its id, a unique prefix of its id, or its name."""
    text = text.strip()
    try:
        return client.read_flow_run(UUID(text))
    except ValueError:
        pass
    digits = text.replace("-", "").lower()
    if 4 <= len(digits) <= 32 and all(c in "0123456789abcdef" for c in digits):
        page = client.read_flow_runs(id_prefix=text, limit=2)
        if len(page.items) == 1:
            return page.items[0]
        if page.items:
            fail(f"{text!r} is the beginning of several flow runs' ids: give more of it")
    named = client.read_flow_runs(name=text, limit=10).items
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(str(run.id)[:8] for run in named)
        fail(f"{len(named)} flow runs are named {text!r} ({ids}...): give an id (or its beginning)")
    fail(f"no flow run has the id, id prefix or name {text!r}")


def all_task_runs(client: SyncBatonClient, flow_run_id: UUID) -> list[TaskRun]:
    """Every task run of a flow run (all pages), in the order they ran."""
    found: list[TaskRun] = []
    cursor: str | None = None
    while True:
        page = client.read_task_runs(flow_run_id, cursor=cursor, limit=1000)
        found += page.items
        cursor = page.next_cursor
        if cursor is None or not page.items:
            break
    # in the order they ran (a batch of reports is stored with one `created` time)
    far = datetime.max.replace(tzinfo=UTC)
    found.sort(key=lambda run: (run.start_time or run.end_time or far, run.created, run.name))
    return found
