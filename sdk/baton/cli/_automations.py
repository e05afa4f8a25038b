"""`baton automation create | ls | inspect | pause | resume | delete | firings`.

An automation is one trigger and its actions, written in YAML or JSON (`-f automation.yaml`, or
`-f -` for stdin). A deployment's `triggers:` in baton.yaml are automations too, named
`flow/deployment:trigger-N` (or by the trigger's `name`); `baton deploy` keeps them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from .._transport import RequestRejected
from . import _api

if TYPE_CHECKING:
    from .._events._automations import AutomationsClient

app = typer.Typer(no_args_is_help=True, help="Automations: a trigger and the actions it fires.")

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The automation's name (flow/deployment:trigger-N for a deployment's).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextlib.contextmanager
def _client() -> Iterator[AutomationsClient]:
    from .._events._automations import AutomationsClient
    from .._settings import ClientSettings

    settings = ClientSettings.load()
    if not settings.api_url:
        _api.fail("BATON_API_URL is not set (e.g. export BATON_API_URL=http://127.0.0.1:4200/api)")
    with (
        _api.errors(settings.api_url, has_key=bool(settings.api_key)),
        AutomationsClient(settings.api_url, settings.api_key, timeout=settings.request_timeout) as client,
    ):
        yield client


def _read_file(path: str) -> list[dict[str, Any]]:
    """The automations of a YAML or JSON file: one mapping, or a list of them."""
    import yaml

    where = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        _api.fail(f"cannot read {where}: {exc.strerror}")
    try:
        found = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        _api.fail(f"{where} is not valid YAML or JSON: {' '.join(str(exc).split())}")
    items = found if isinstance(found, list) else [found]
    if not items or not all(isinstance(item, dict) for item in items):
        _api.fail(f"{where}: give an automation (a mapping with name, trigger, actions) or a list of them")
    for number, item in enumerate(items):
        if not isinstance(item.get("name"), str) or not item["name"]:
            what = f"automation {number}" if len(items) > 1 else "the automation"
            _api.fail(f"{where}: {what} has no name")
    return items


@app.command("create")
def create(
    file: Annotated[
        str,
        typer.Option("--file", "-f", help="A YAML or JSON file of one automation or a list; - for stdin."),
    ],
    update: Annotated[
        bool, typer.Option("--update", "-u", help="Change an automation of that name in place if it exists.")
    ] = False,
) -> None:
    """Create automations from a file (each is checked by the server: a bad field is named)."""
    items = _read_file(file)
    where = "stdin" if file == "-" else file
    out = _api.console()
    with _client() as client:
        for item in items:
            name = item["name"]
            try:
                try:
                    made = client.create_automation(item)
                    verb = "Created"
                except RequestRejected as exc:
                    if not (update and exc.status == 409):
                        raise
                    made = client.replace_automation(name, item)
                    verb = "Updated"
            except RequestRejected as exc:
                if exc.status == 409:
                    _api.fail(f"automation {name!r} exists: use --update to change it, or pick another name")
                if exc.status == 422:
                    _api.fail(f"{where}: automation {name!r}: {exc.detail}")
                raise
            state = "" if made["enabled"] else " (paused)"
            out.print(
                f"{verb} automation {made['name']!r}{state}: {summary(made['trigger'])}", soft_wrap=True
            )


def summary(trigger: dict[str, Any]) -> str:
    """A trigger in a few words: `order.created x3 within 1m, for each baton.resource.id`."""
    kind = trigger.get("type", "event")
    if kind == "compound":
        require = trigger.get("require", "all")
        what = f"{require} of"
        span = _api.duration(trigger.get("within", 0))
        return f"{what} {len(trigger.get('triggers', []))} triggers within {span}"
    if kind == "sequence":
        span = _api.duration(trigger.get("within", 0))
        return f"sequence of {len(trigger.get('triggers', []))} within {span}"
    names = ", ".join(trigger.get("expect") or ["*"])
    threshold = trigger.get("threshold", 1)
    within = trigger.get("within", 0)
    if trigger.get("posture") == "Proactive":
        text = f"fewer than {threshold} {names} within {_api.duration(within)}"
        if trigger.get("after"):
            text += f" after {', '.join(trigger['after'])}"
    else:
        text = names + (f" x{threshold}" if threshold != 1 else "")
        if within:
            text += f" within {_api.duration(within)}"
    if trigger.get("match"):
        text += " where " + ", ".join(f"{k}={v}" for k, v in trigger["match"].items())
    if trigger.get("for_each"):
        text += f", for each {', '.join(trigger['for_each'])}"
    return text


def _actions(automation: dict[str, Any]) -> str:
    types = [a["type"] for a in automation["actions"]]
    types += [f"{a['type']} (on trigger)" for a in automation.get("actions_on_trigger", [])]
    types += [f"{a['type']} (on resolve)" for a in automation.get("actions_on_resolve", [])]
    return ", ".join(types)


def _enabled(automation: dict[str, Any]) -> Text:
    return Text("active", style="green") if automation["enabled"] else Text("paused", style="yellow")


@app.command("ls")
def list_automations(as_json: AsJson = False) -> None:
    """List the automations, deployments' triggers included."""
    with _client() as client:
        automations = client.list_automations()
    if as_json:
        _api.print_json(automations)
        return
    table = _api.table("Name", "Status", "Trigger", "Actions", "ID")
    for automation in sorted(automations, key=lambda a: a["name"]):
        table.add_row(
            automation["name"],
            _enabled(automation),
            summary(automation["trigger"]),
            _actions(automation),
            automation["id"],
        )
    _api.console().print(table)


@app.command("inspect")
def inspect_automation(name: Name, as_json: AsJson = False) -> None:
    """An automation: its trigger and actions (as YAML), and its last firing."""
    with _client() as client:
        automation = client.read_automation(name)
        last = client.read_firings(name, 1)
    if as_json:
        _api.print_json(automation)
        return
    import yaml

    out = _api.console()
    out.print(f"Automation {automation['name']}  ({automation['id']})", soft_wrap=True)
    out.print(Text("  status:  ").append(_enabled(automation)))
    out.print(f"  trigger: {summary(automation['trigger'])}", soft_wrap=True)
    if automation.get("deployment_id"):
        out.print(f"  deployment trigger of {automation['deployment_id']} (change it with baton deploy)")
    if automation.get("description"):
        out.print(f"  about:   {automation['description']}", soft_wrap=True)
    out.print(f"  revision {automation['revision']}, updated {_when(automation['updated'])}")
    out.print(f"  last fired: {_when(last[0]['created']) if last else 'never'}")
    shown = {
        key: automation[key]
        for key in ("trigger", "actions", "actions_on_trigger", "actions_on_resolve")
        if automation.get(key)
    }
    out.print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True).rstrip(), soft_wrap=True)


def _set(name: str, enabled: bool) -> None:
    with _client() as client:
        automation = client.set_enabled(name, enabled)
    verb = "Resumed" if enabled else "Paused"
    _api.console().print(f"{verb} automation {automation['name']!r}.", soft_wrap=True)


@app.command("pause")
def pause(name: Name) -> None:
    """Stop it firing until it is resumed."""
    _set(name, False)


@app.command("resume")
def resume(name: Name) -> None:
    """Let a paused automation fire again."""
    _set(name, True)


@app.command("delete")
def delete(name: Name, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Delete an automation (a deployment's trigger comes back with the next baton deploy)."""
    if not yes:
        typer.confirm(f"Delete automation {name!r}?", abort=True)
    with _client() as client:
        client.delete_automation(name)
    _api.console().print(f"Deleted automation {name!r}.", soft_wrap=True)


def _when(value: str) -> str:
    return f"{datetime.fromisoformat(value).astimezone():%Y-%m-%d %H:%M:%S}"


def _outcome(action: dict[str, Any]) -> Text:
    ok = action.get("ok")
    style, word = ("green", "ok") if ok else (("grey50", "pending") if ok is None else ("red", "failed"))
    text = Text(f"{action['index']} {action['type']} ").append(word, style=style)
    if action.get("flow_run_id"):
        text.append(f" run {action['flow_run_id']}")
    if action.get("detail") and not ok:
        text.append(f": {action['detail']}")
    return text


@app.command("firings")
def firings(
    name: Name,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 20,
    as_json: AsJson = False,
) -> None:
    """When it fired, on which events, and what each action did (newest first)."""
    with _client() as client:
        found = client.read_firings(name, limit)
    if as_json:
        _api.print_json(found)
        return
    if not found:
        _api.console().print(f"Automation {name!r} has not fired.", soft_wrap=True)
        return
    table = _api.table("When", "Kind", "OK", "Events", "Actions", "Key")
    for firing in found:
        ok = firing["ok"]
        verdict = Text("yes", style="green") if ok else Text("pending" if ok is None else "no", style="red")
        actions = Text("\n").join(_outcome(a) for a in firing["actions"])
        events = ", ".join(str(e)[:8] for e in firing["event_ids"][:3])
        if len(firing["event_ids"]) > 3:
            events += f" +{len(firing['event_ids']) - 3}"
        table.add_row(
            _when(firing["created"]), firing["kind"], verdict, events or "-", actions, firing["key"]
        )
    _api.console().print(table)
