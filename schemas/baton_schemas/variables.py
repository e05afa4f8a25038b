"""Variables: named JSON values kept by the server, as the reference system has them.

A name is 1-255 characters of lower-case letters, digits, dashes and underscores; a value is any
JSON value (null included) whose JSON text is at most 5,000 characters; a variable may carry tags.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import AfterValidator, Field

from ._base import BatonModel, ClientModel
from .limits import Tags, refuse_nul_inside

VARIABLE_NAME_MAX = 255
VARIABLE_VALUE_MAX = 5_000  # characters of the value's JSON text
_NAME = re.compile(r"[a-z0-9_-]+")


def check_variable_name(name: str) -> str:
    """The name, or a ValueError that says what a name may hold."""
    if not name or len(name) > VARIABLE_NAME_MAX:
        raise ValueError(f"a variable name has 1 to {VARIABLE_NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a variable name: use lower-case letters, digits, dashes and underscores"
        )
    return name


def check_variable_value(value: Any) -> Any:
    """The value, or a ValueError if it is not JSON or its JSON text is too long."""
    try:
        text = orjson.dumps(value)
    except TypeError as exc:
        raise ValueError(f"a variable's value must be JSON: {exc}") from None
    if len(text.decode()) > VARIABLE_VALUE_MAX:
        raise ValueError(
            f"a variable's value is at most {VARIABLE_VALUE_MAX} characters of JSON "
            f"(this one has {len(text.decode())})"
        )
    refuse_nul_inside({"value": value})
    return value


VariableName = Annotated[str, AfterValidator(check_variable_name)]
VariableValue = Annotated[Any, AfterValidator(check_variable_value)]


class VariableCreate(ClientModel):
    """`POST /api/variables` (409 if the name is taken) and, without `name`, the body of
    `PUT /api/variables/{name}` (create or overwrite)."""

    name: VariableName
    value: VariableValue = None
    tags: Tags = Field(default_factory=list)


class VariableWrite(ClientModel):
    """`PUT /api/variables/{name}`: the variable's new value and tags (replacing the old ones)."""

    value: VariableValue = None
    tags: Tags = Field(default_factory=list)


class StoredVariable(BatonModel):
    id: UUID
    name: str
    value: Any = None
    tags: list[str] = Field(default_factory=list)
    created: datetime
    updated: datetime
