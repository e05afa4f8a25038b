"""Limits on the text clients send: one definition of each, reused by every model.

    class FlowCreate(ClientModel):
        name: Name
        description: Description | None = None
        tags: Tags = Field(default_factory=list)

PostgreSQL cannot store a NUL character (U+0000) in text or JSON, so identifiers and labels that
contain one are refused (a 422 that names the field), as are names and tags past their length.
Free text that is output rather than chosen (log lines, state messages) keeps its NUL characters
as U+FFFD instead, so that a stray byte cannot cost a run its logs or its final state.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

NAME_MAX = 200  # flows, deployments, runs, work pools and queues
TAG_MAX = 100
TAGS_MAX = 100  # tags on one object
DESCRIPTION_MAX = 10_000
LABEL_MAX = 1_000  # versions, entrypoints, filters, idempotency keys

NUL = "\x00"
_NUL_ERROR = "must not contain a NUL character (\\u0000)"


def refuse_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(_NUL_ERROR)
    return value


def replace_nul(value: str) -> str:
    return value.replace(NUL, "\ufffd") if NUL in value else value


def _nul_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in a JSON value a string (or a key) holds a NUL character, if anywhere."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in str(key):
                return (*path, str(key))
            if (found := _nul_path(item, (*path, str(key)))) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_path(item, (*path, str(index)))) is not None:
                return found
    return None


def refuse_nul_inside(value: dict[str, Any]) -> dict[str, Any]:
    found = _nul_path(value)
    if found is not None:
        raise ValueError(f"{'.'.join(found) or 'a key'} {_NUL_ERROR}")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX), AfterValidator(refuse_nul)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=TAG_MAX), AfterValidator(refuse_nul)]
Tags = Annotated[list[Tag], Field(max_length=TAGS_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX), AfterValidator(refuse_nul)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=LABEL_MAX), AfterValidator(refuse_nul)]
IdempotencyKey = Label
RunName = Label  # run names are often rendered from templates: more room than NAME_MAX
Text = Annotated[str, AfterValidator(refuse_nul)]  # stored whole (scripts): the body limit bounds it
# JSON objects stored as they are (parameters, job variables): no NUL anywhere inside
JsonObject = Annotated[dict[str, Any], AfterValidator(refuse_nul_inside)]
# output text: kept whole (the request body limit bounds it), with NUL shown as U+FFFD
Message = Annotated[str, AfterValidator(replace_nul)]
