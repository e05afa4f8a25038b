"""The CLI's help in one style (issue 16, point 17): every parameter has help, no type is shown
beside it (`<str>`, `<bool>`), every default is shown, and arguments are upper case in every
command's usage line and argument list."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import typer.main
from typer.testing import CliRunner

from baton.cli import app

from ..support.processes import BATON

TYPE_MARKER = re.compile(r"<(str|bool|int|float|path|list\[[a-z]+\]|[a-z ]+ range|datetime|uuid)>", re.I)


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `group` (typer carries its own copy of click: duck-typed)."""
    if hasattr(group, "commands"):
        for name, command in sorted(group.commands.items()):
            yield from _commands(command, (*path, name))
    else:
        yield path, group


def test_every_parameter_has_help_and_every_default_is_shown() -> None:
    root = typer.main.get_command(app)
    missing: list[str] = []
    hidden_defaults: list[str] = []
    lower: list[str] = []
    commands = list(_commands(root))
    assert len(commands) > 40
    for path, command in commands:
        for param in command.params:
            where = f"baton {' '.join(path)} {param.name}"
            if param.param_type_name == "option":
                if not param.help:
                    missing.append(where)
                if (
                    not param.is_flag
                    and not param.multiple
                    and param.default not in (None, False)
                    and param.show_default is False
                ):
                    hidden_defaults.append(where)
            elif param.param_type_name == "argument":
                if not getattr(param, "help", None):
                    missing.append(where)
                shown = param.display_name_raw
                if shown != shown.upper():
                    lower.append(f"{where}: {shown}")
    assert not missing, f"no help: {missing}"
    assert not hidden_defaults, f"defaults not shown: {hidden_defaults}"
    assert not lower, f"arguments not upper case: {lower}"


def test_help_shows_no_types_and_upper_case_arguments() -> None:
    """Each command's `--help` as a user sees it (one command is checked through the installed
    `baton` as well)."""
    root = typer.main.get_command(app)
    runner = CliRunner()
    typed: list[str] = []
    usage_case: list[str] = []
    commands = [path for path, _ in _commands(root)]
    assert len(commands) > 40
    for path in commands:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
        assert shown.exit_code == 0, (path, shown.output)
        if TYPE_MARKER.search(shown.stdout):
            typed.append(" ".join(path))
        usage = next(line for line in shown.stdout.splitlines() if "Usage:" in line)
        if re.search(r"\{|\[?[a-z_]+\]?(\.\.\.)?\s*$", usage.split("[OPTIONS]")[-1].strip() or "X"):
            usage_case.append(usage.strip())
    assert not typed, f"types shown in the help of: {typed}"
    installed = subprocess.run(
        [BATON, "flow-run", "ls", "--help"],
        env={**os.environ, "COLUMNS": "160"},
        capture_output=True,
        text=True,
    )
    assert "Only runs of this flow." in installed.stdout and not TYPE_MARKER.search(installed.stdout)
    assert not usage_case, f"usage lines with lower-case or braced arguments: {usage_case}"


def test_every_listing_is_made_by_the_one_table_helper() -> None:
    """One table style: `baton.cli._api.table` builds every listing (a `Table.grid` of label and
    value pairs is not a listing)."""
    from pathlib import Path

    cli = Path(__file__).resolve().parents[2] / "sdk" / "baton" / "cli"
    own = [
        f"{path.name}:{number}"
        for path in sorted(cli.glob("*.py"))
        if path.name != "_api.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bTable\(", line)
    ]
    assert not own, f"tables made outside _api.table: {own}"
