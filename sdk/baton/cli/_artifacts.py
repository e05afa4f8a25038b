"""`baton artifact ls | inspect | delete`: what runs showed of their work, through the API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from baton_schemas.artifacts import Artifact

app = typer.Typer(no_args_is_help=True, help="Artifacts: markdown, tables and links made by runs.")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _when(artifact: Artifact) -> str:
    return artifact.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _summary(artifact: Artifact, width: int = 60) -> str:
    """One line of what the artifact holds."""
    data: Any = artifact.data
    if artifact.type.value == "link" and isinstance(data, dict):
        text = str(data.get("link_text") or data.get("link"))
    elif artifact.type.value == "table":
        rows = len(next(iter(data.values()), [])) if isinstance(data, dict) else len(data or [])
        text = f"{rows} row{'s' if rows != 1 else ''}"
    else:
        text = " ".join(str(data).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("ls")
def list_artifacts(
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Every artifact, not only the newest of each key.")
    ] = False,
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run", "-r", help="Only those of this flow run (its id, id prefix or name); implies --all."
        ),
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only the artifacts of this key.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: AsJson = False,
) -> None:
    """The newest artifact of each key (or, with --all or --flow-run, every artifact), newest first."""
    with _api.client() as client:
        run = _api.find_flow_run(client, flow_run) if flow_run else None
        latest = not (show_all or run is not None or key)
        found = client.read_artifacts(
            key=key, flow_run_id=run.id if run else None, latest=latest, limit=limit
        )
    if as_json:
        _api.print_json(found)
        return
    if not found:
        _api.console().print("No artifacts." if not latest else "No keyed artifacts (--all lists every one).")
        return
    table = _api.table("ID", "Key", "Type", "Shows", "Flow run", "Created")
    for artifact in found:
        table.add_row(
            str(artifact.id),
            artifact.key or "-",
            artifact.type.value,
            _summary(artifact),
            str(artifact.flow_run_id or "-")[:8],
            _when(artifact),
        )
    _api.console().print(table)


def _render(artifact: Artifact) -> Any:
    """What the artifact holds, for a terminal."""
    from rich.markdown import Markdown

    data: Any = artifact.data
    if artifact.type.value == "markdown":
        return Markdown(str(data))
    if artifact.type.value == "link" and isinstance(data, dict):
        return Text(f"{data.get('link_text') or data['link']}: {data['link']}")
    if isinstance(data, dict):  # columns -> cells
        columns = [str(c) for c in data]
        rows: list[list[Any]] = [list(cells) for cells in zip(*data.values(), strict=False)]
    elif data and isinstance(data[0], dict):
        columns = list(dict.fromkeys(str(c) for row in data for c in row))
        rows = [[row.get(c) for c in columns] for row in data]
    else:
        width = max((len(row) for row in data or []), default=0)
        columns = [str(i) for i in range(width)]
        rows = [list(row) for row in data or []]
    table = _api.table(*columns)
    for row in rows:
        table.add_row(
            *("" if cell is None else cell if isinstance(cell, str) else json.dumps(cell) for cell in row)
        )
    return table


@app.command("inspect")
def inspect(
    key_or_id: Annotated[
        str,
        typer.Argument(
            metavar="KEY|ID",
            help="An artifact key (all its versions) or one artifact's id.",
            show_default=False,
        ),
    ],
    limit: Annotated[int, typer.Option(help="At most this many versions of a key, newest first.")] = 10,
    as_json: AsJson = False,
) -> None:
    """An artifact's content; for a key, its history, newest first."""
    with _api.client() as client:
        try:
            found = [client.read_artifact(UUID(key_or_id))]
        except ValueError:
            found = client.read_artifacts(key=key_or_id, limit=limit)
    if not found:
        _api.fail(f"no artifact has the key {key_or_id!r}")
    if as_json:
        _api.print_json(found)
        return
    out = _api.console()
    for number, artifact in enumerate(found):
        if number:
            out.print()
        title = f"{artifact.key or 'artifact'}  ({artifact.id})"
        out.print(Text(title, style="bold"))
        run = f"flow run {artifact.flow_run_id}" if artifact.flow_run_id else "no flow run"
        task = f", task run {artifact.task_run_id}" if artifact.task_run_id else ""
        out.print(f"{artifact.type.value}, {_when(artifact)}, {run}{task}", soft_wrap=True)
        if artifact.description:
            out.print(artifact.description, soft_wrap=True)
        out.print(_render(artifact))


@app.command("delete")
def delete(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="The key; all its versions go.", show_default=False)
    ],
) -> None:
    """Delete every artifact of a key."""
    with _api.client() as client:
        client.delete_artifacts(key)
    _api.console().print(f"Deleted the artifacts of key {key!r}.")
