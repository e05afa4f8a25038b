"""Variables: named JSON values kept by the server, as the reference system's `Variable`.

    from baton.variables import Variable

    Variable.set("answer", {"value": 42}, tags=["config"])      # ValueError if it exists
    Variable.set("answer", 43, overwrite=True)
    Variable.get("answer")                 # 43
    Variable.get("missing", default="x")   # "x"
    Variable.unset("answer")               # True (False if there was none)

    await Variable.aget("answer")          # aset and aunset likewise

A name is 1-255 lower-case letters, digits, dashes and underscores; a value is any JSON value of
at most 5,000 characters. Reading needs an API key with `read`, `run`, `worker` or `deploy`;
writing one with `deploy`. The server is `BATON_API_URL` / `BATON_API_KEY` (or the profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from baton_schemas.variables import (
    StoredVariable,
    VariableCreate,
    VariableWrite,
    check_variable_name,
    check_variable_value,
)

from ._deployments import aconnect, connect
from ._transport import RequestRejected

__all__ = ["Variable"]


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable as stored: its name, value and tags."""

    name: str
    value: Any = None
    tags: list[str] = field(default_factory=list)

    @classmethod
    def _of(cls, stored: StoredVariable) -> Variable:
        return cls(stored.name, stored.value, list(stored.tags))

    @staticmethod
    def _checked(name: str, value: Any) -> None:
        check_variable_name(name)
        check_variable_value(value)

    @staticmethod
    def _exists(name: str) -> ValueError:
        return ValueError(f"Variable {name!r} already exists. Use `overwrite=True` to update it.")

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The variable's value, or `default` if there is no such variable."""
        with connect() as client:
            stored = client.read_variable(name)
        return default if stored is None else stored.value

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        async with aconnect() as client:
            stored = await client.read_variable(name)
        return default if stored is None else stored.value

    @classmethod
    def set(cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False) -> Variable:
        """Create the variable; with `overwrite=True` replace its value and tags if it exists."""
        cls._checked(name, value)
        with connect() as client:
            try:
                if overwrite:
                    stored = client.write_variable(name, VariableWrite(value=value, tags=tags or []))
                else:
                    stored = client.create_variable(VariableCreate(name=name, value=value, tags=tags or []))
            except RequestRejected as exc:
                if exc.status == 409:
                    raise cls._exists(name) from None
                raise
        return cls._of(stored)

    @classmethod
    async def aset(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        cls._checked(name, value)
        async with aconnect() as client:
            try:
                if overwrite:
                    stored = await client.write_variable(name, VariableWrite(value=value, tags=tags or []))
                else:
                    create = VariableCreate(name=name, value=value, tags=tags or [])
                    stored = await client.create_variable(create)
            except RequestRejected as exc:
                if exc.status == 409:
                    raise cls._exists(name) from None
                raise
        return cls._of(stored)

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete the variable; whether there was one."""
        with connect() as client:
            return client.delete_variable(name)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        async with aconnect() as client:
            return await client.delete_variable(name)
