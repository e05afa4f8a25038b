"""`baton variable ls | inspect | get | set | delete`: the server's variables, through the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from . import _api

app = typer.Typer(no_args_is_help=True, help="Variables: named JSON values kept by the server.")

Name = Annotated[str, typer.Argument(metavar="NAME", help="The variable's name.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _shown(value: Any, width: int | None = None) -> str:
    """A string as it is, anything else as JSON; cut to `width` characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


@app.command("ls")
def list_variables(
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only variables with this tag (repeatable).")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="Only names that begin so.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, by name.")] = 200,
    as_json: AsJson = False,
) -> None:
    """The variables, by name."""
    with _api.client() as client:
        found = client.read_variables(tag=tag, prefix=prefix, limit=limit)
    if as_json:
        _api.print_json(found)
        return
    if not found:
        _api.console().print("No variables.")
        return
    table = _api.table("Name", "Value", "Tags", "Updated")
    for variable in found:
        updated = variable.updated.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(variable.name, _shown(variable.value, 60), ", ".join(variable.tags) or "-", updated)
    _api.console().print(table)


@app.command("inspect")
def inspect(name: Name, as_json: AsJson = False) -> None:
    """A variable: its value (whole), tags and times."""
    with _api.client() as client:
        variable = client.read_variable(name)
    if variable is None:
        _api.fail(f"no variable named {name!r}")
    if as_json:
        _api.print_json(variable)
        return
    out = _api.console()
    out.print(Text.assemble((variable.name, "bold"), f"  ({variable.id})"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, text in (
        ("Value", json.dumps(variable.value, indent=2)),
        ("Tags", ", ".join(variable.tags) or "-"),
        ("Created", variable.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
        ("Updated", variable.updated.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
    ):
        grid.add_row(label, text)
    out.print(grid)


@app.command("get")
def get(name: Name) -> None:
    """Print a variable's value: a string as it is, anything else as JSON."""
    with _api.client() as client:
        variable = client.read_variable(name)
    if variable is None:
        _api.fail(f"no variable named {name!r}")
    typer.echo(_shown(variable.value))


@app.command("set")
def set_variable(
    name: Name,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help='JSON (`42`, `true`, `{"a": 1}`, `"42"`), or else taken as text.',
            show_default=False,
        ),
    ],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag for the variable (repeatable).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the value and tags of an existing variable.")
    ] = False,
) -> None:
    """Create a variable (or, with --overwrite, replace one)."""
    from baton_schemas.variables import (
        VariableCreate,
        VariableWrite,
        check_variable_name,
        check_variable_value,
    )

    parsed = _api.parse_value(value)
    try:
        check_variable_name(name)
        check_variable_value(parsed)
    except ValueError as exc:
        _api.fail(str(exc))
    tags = list(tag or [])
    with _api.client() as client:
        if overwrite:
            stored = client.write_variable(name, VariableWrite(value=parsed, tags=tags))
        else:  # 409 if it exists, said as one line
            stored = client.create_variable(VariableCreate(name=name, value=parsed, tags=tags))
    _api.console().print(f"Set variable {stored.name!r} to {_shown(stored.value, 60)}", soft_wrap=True)


@app.command("delete")
def delete(name: Name) -> None:
    """Delete a variable."""
    with _api.client() as client:
        if not client.delete_variable(name):
            _api.fail(f"no variable named {name!r}")
    _api.console().print(f"Deleted variable {name!r}.")


app.command("unset", help="Delete a variable (the same as delete).")(delete)
