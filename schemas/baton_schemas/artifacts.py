"""Artifacts: what a run shows of its work, as the reference system has them.

Three kinds: `markdown` (data: the text), `table` (data: a list of rows, each a list of cells
or an object of column -> cell, or an object of column -> list of cells) and `link` (data:
`{"link": url, "link_text": text or null}`). A key (lower-case letters, digits and dashes)
names an artifact across runs: the artifacts sharing one are its history, the newest the
current one.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, model_validator

from ._base import BatonModel, ClientModel
from .limits import Description, Label, refuse_nul_inside

ARTIFACT_KEY_MAX = 255
_KEY = re.compile(r"[a-z0-9-]+")


class ArtifactType(StrEnum):
    MARKDOWN = "markdown"
    TABLE = "table"
    LINK = "link"


def check_artifact_key(key: str) -> str:
    if not key or len(key) > ARTIFACT_KEY_MAX:
        raise ValueError(f"an artifact key has 1 to {ARTIFACT_KEY_MAX} characters")
    if not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not an artifact key: use lower-case letters, digits and dashes")
    return key


ArtifactKey = Annotated[str, AfterValidator(check_artifact_key)]


def _check_table(data: Any) -> None:
    if isinstance(data, dict):
        if not all(isinstance(column, list) for column in data.values()):
            raise ValueError("a table given as an object maps each column to a list of its cells")
        if len({len(column) for column in data.values()}) > 1:
            raise ValueError("a table's columns must have the same number of cells")
        return
    if not isinstance(data, list):
        raise ValueError("a table is a list of rows (lists or objects) or an object of columns")
    kinds = {type(row) for row in data}
    if not kinds <= {list, dict} or len(kinds) > 1:
        raise ValueError("a table's rows are all lists or all objects")


class ArtifactCreate(ClientModel):
    """`POST /api/artifacts`."""

    type: ArtifactType
    key: ArtifactKey | None = None
    description: Description | None = None
    data: Any = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None

    @model_validator(mode="after")
    def _data_fits_type(self) -> ArtifactCreate:
        if self.type is ArtifactType.MARKDOWN and not isinstance(self.data, str):
            raise ValueError("a markdown artifact's data is its text")
        if self.type is ArtifactType.LINK:
            if not isinstance(self.data, dict) or not isinstance(self.data.get("link"), str):
                raise ValueError('a link artifact\'s data is {"link": url, "link_text": text or null}')
            LinkData.model_validate(self.data)
        if self.type is ArtifactType.TABLE:
            _check_table(self.data)
        refuse_nul_inside({"data": self.data})
        return self


class LinkData(ClientModel):
    link: Label
    link_text: Label | None = None


class Artifact(BatonModel):
    id: UUID
    key: str | None = None
    type: ArtifactType
    description: str | None = None
    data: Any = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    created: datetime
