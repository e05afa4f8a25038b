"""The help of every command in one style: an option's help says what it takes, with no type
beside it (`<str>`, `<bool>`, `<list[str]>`); an option whose value has a shape names it
(`metavar="KEY=VALUE"`); arguments are upper case everywhere (`baton flow-run inspect RUN`).
Number ranges and defaults are still shown.

Typer prints each parameter's type in the help and has no setting to leave it out, so this
module gives its parameter classes the display the CLI wants. It is applied once, when the CLI
is imported; nothing else in Baton uses typer.
"""

from __future__ import annotations

from typing import Any

from typer import core


def _argument_name(self: Any) -> str:
    return str(self.metavar or self.name or "").upper()


def _argument_usage(self: Any) -> str:
    name = _argument_name(self)
    if not self.required:
        name = f"[{name}]"
    return f"{name}..." if self.nargs != 1 else name


def _no_type(self: Any, ctx: Any) -> str | None:
    return None


def _option_value(self: Any, ctx: Any) -> str | None:
    """An option's own metavar (`KEY=VALUE`) if it was given one; else nothing."""
    return str(self.metavar) if self.metavar else None


def install() -> None:
    core.TyperArgument.display_name_raw = property(_argument_name)  # type: ignore[assignment,method-assign]
    core.TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = _no_type  # type: ignore[method-assign]
    core.TyperOption.display_type_rich = _option_value  # type: ignore[method-assign]
