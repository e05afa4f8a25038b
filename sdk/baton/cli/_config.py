"""`baton config view | set | unset`: the profile, `$BATON_HOME/profile.env` (`~/.baton` by
default), that every `baton` command and flow reads after the environment. `make dev` leaves
the API's URL and an admin key in it, so a new shell needs nothing exported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from . import _api

app = typer.Typer(no_args_is_help=True, help="The profile: settings every command reads.")

SECRET = ("BATON_API_KEY",)


def profile_path() -> Path:
    from .._settings import baton_home

    return baton_home() / "profile.env"


def read_profile(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


def write_profile(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)  # it holds a key


def setting_name(key: str) -> str:
    """`api_url` or `BATON_API_URL` -> `BATON_API_URL`; anything else is refused."""
    name = key.strip().upper().replace("-", "_")
    if not name.startswith("BATON_"):
        name = f"BATON_{name}"
    if name == "BATON_" or not name.replace("_", "").isalnum():
        raise typer.BadParameter(f"{key!r} is not a setting name (e.g. BATON_API_URL)")
    return name


def _shown(key: str, value: str) -> str:
    return value[:10] + "…" if key in SECRET and len(value) > 10 else value


@app.command("view")
def view(
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print the API key whole.")] = False,
) -> None:
    """The profile's file and settings; a setting the environment overrides says so."""
    path = profile_path()
    out = _api.console()
    out.print(Text.assemble(("Profile ", "bold"), str(path), "" if path.exists() else " (not written yet)"))
    values = read_profile(path)
    if not values:
        out.print("No settings.")
        return
    table = _api.table("Setting", "Value", "Note")
    for key, value in values.items():
        note = "overridden by the environment" if key in os.environ and os.environ[key] != value else ""
        table.add_row(key, value if show_secrets else _shown(key, value), note)
    out.print(table)


@app.command("set")
def set_values(
    pairs: Annotated[
        list[str],
        typer.Argument(metavar="KEY=VALUE...", help="Settings, e.g. BATON_API_URL=http://host:4200/api"),
    ],
) -> None:
    """Write settings into the profile (`api_url=...` is `BATON_API_URL=...`)."""
    path = profile_path()
    values = read_profile(path)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r}: use KEY=VALUE")
        name = setting_name(key)
        if name == "BATON_API_URL" and not value.rstrip("/").endswith("/api"):
            _api.console(stderr=True).print(
                f"note: {value!r} does not end in /api; the API's base URL usually does "
                "(http://127.0.0.1:4200/api)"
            )
        values[name] = value.strip()
    write_profile(path, values)
    _api.console().print(f"Saved {', '.join(setting_name(p.partition('=')[0]) for p in pairs)} in {path}")


@app.command("unset")
def unset(keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Settings to remove.")]) -> None:
    """Remove settings from the profile."""
    path = profile_path()
    values = read_profile(path)
    names = [setting_name(key) for key in keys]
    missing = [name for name in names if name not in values]
    if missing:
        _api.fail(f"not in the profile {path}: {', '.join(missing)}")
    write_profile(path, {k: v for k, v in values.items() if k not in names})
    _api.console().print(f"Removed {', '.join(names)} from {path}")
