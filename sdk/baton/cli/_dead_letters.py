"""`baton dead-letters ls | replay | drop`: what was parked in `baton.dead`, why, and what to do.

These talk to RabbitMQ directly (`BATON_BROKER_URL`), so an operator can look while the server
is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from .._dead_letters import Outcome

app = typer.Typer(no_args_is_help=True)

_IDS = typer.Argument(help="Message ids (the first column of `ls`).", show_default=False)
_ALL = typer.Option("--all", help="Every parked message.")


def _broker_url() -> str:
    from .._settings import ClientSettings

    url = ClientSettings.load().broker_url
    if not url:
        _api.fail("set BATON_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672/) to reach baton.dead")
    return url


def _chosen(message_ids: list[str] | None, everything: bool) -> set[str] | None:
    if everything and message_ids:
        _api.fail("give message ids or --all, not both")
    if not everything and not message_ids:
        _api.fail("give the ids of the messages (see `baton dead-letters ls`), or --all")
    return None if everything else set(message_ids or ())


@app.command("ls")
def ls(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, oldest first.")] = (
        100
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List parked messages with the reason each was parked and where it came from."""
    from .._dead_letters import DeadLetterError, list_dead_letters

    try:
        letters = asyncio.run(list_dead_letters(_broker_url(), limit=limit))
    except DeadLetterError as exc:
        _api.fail(str(exc))
    if as_json:
        _api.print_json(
            [
                {
                    "message_id": d.message_id,
                    "kind": d.kind,
                    "reason": d.reason,
                    "exchange": d.exchange,
                    "routing_key": d.routing_key,
                    "queue": d.queue,
                    "body": d.body.decode(errors="replace"),
                }
                for d in letters
            ]
        )
        return
    out = _api.console()
    if not letters:
        out.print("baton.dead is empty")
        return
    table = _api.table("Message ID", "Kind", "From", "Reason")
    for letter in letters:
        origin = f"{letter.exchange or '(default)'} / {letter.routing_key}"
        if letter.queue:
            origin += f" ({letter.queue})"
        table.add_row(letter.message_id, letter.kind, origin, Text(letter.reason[:300], style="red"))
    out.print(table)


@app.command("replay")
def replay(
    message_ids: Annotated[list[str] | None, _IDS] = None,
    everything: Annotated[bool, _ALL] = False,
) -> None:
    """Publish messages again to the exchange and routing key they were parked from (after
    fixing what made them fail); each leaves baton.dead once the broker has its copy."""
    from .._dead_letters import replay_dead_letters

    _act(replay_dead_letters, _chosen(message_ids, everything), "replayed")


@app.command("drop")
def drop(
    message_ids: Annotated[list[str] | None, _IDS] = None,
    everything: Annotated[bool, _ALL] = False,
) -> None:
    """Remove messages from baton.dead for good."""
    from .._dead_letters import drop_dead_letters

    _act(drop_dead_letters, _chosen(message_ids, everything), "dropped")


def _act(
    action: Callable[[str, set[str] | None], Coroutine[Any, Any, Outcome]], chosen: set[str] | None, verb: str
) -> None:
    """Run `action` on the chosen messages (None: all) and say what became of each."""
    from .._dead_letters import DeadLetterError

    try:
        outcome = asyncio.run(action(_broker_url(), chosen))
    except DeadLetterError as exc:
        _api.fail(str(exc))
    done, failed = outcome.done, outcome.failed
    out = _api.console()
    out.print(f"{verb} {len(done)} message{'' if len(done) == 1 else 's'}")
    for message_id, why in failed.items():
        out.print(Text(f"not {verb}: {message_id}: {why}", style="red"))
    missing = sorted((chosen or set()) - set(done) - set(failed))
    for message_id in missing:
        out.print(Text(f"not in baton.dead: {message_id}", style="yellow"))
    if failed or missing:
        raise typer.Exit(1)
