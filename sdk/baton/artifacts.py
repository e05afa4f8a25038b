"""Artifacts: what a run shows of its work, as the reference system's `prefect.artifacts`.

    from baton.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    @task
    def report(rows: list[dict[str, Any]]) -> None:
        create_table_artifact(rows, key="daily-totals", description="Totals by region")
        create_markdown_artifact("# Done\\n\\nAll regions loaded.", key="daily-report")
        create_link_artifact("https://example.com/dash", link_text="Dashboard")

Each call stores an artifact on the server with the flow run (and task run) it is made in, and
returns its id. Artifacts sharing a `key` (lower-case letters, digits and dashes) are that key's
history: `baton artifact inspect KEY` shows them all, `baton artifact ls` the newest of each.
A table is a list of rows (lists, or dicts of column -> cell) or a dict of columns -> lists;
NaN cells are stored as null. `acreate_*` are the async twins. With no server configured
(`BATON_API_URL`), nothing is stored: a warning says so and the call returns None.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from uuid import UUID

from baton_schemas.artifacts import ArtifactCreate, ArtifactType

from ._context import flow_run_ctx, task_run_ctx
from ._deployments import aconnect, connect
from ._settings import ClientSettings

__all__ = [
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_table_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_table_artifact",
]

log = logging.getLogger("baton.artifacts")


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def _artifact(kind: ArtifactType, data: Any, key: str | None, description: str | None) -> ArtifactCreate:
    task_ctx = task_run_ctx.get()
    flow_ctx = flow_run_ctx.get()
    flow_run_id = task_ctx.flow_run_id if task_ctx is not None else None
    if flow_run_id is None and flow_ctx is not None:
        flow_run_id = flow_ctx.flow_run.id
    return ArtifactCreate(
        type=kind,
        key=key,
        description=description,
        data=data,
        flow_run_id=flow_run_id,
        task_run_id=task_ctx.task_run.id if task_ctx is not None else None,
    )


def _stored_nowhere(artifact: ArtifactCreate) -> bool:
    if ClientSettings.load().api_url:
        return False
    log.warning("No server configured (BATON_API_URL): the %s artifact was not stored", artifact.type.value)
    return True


def _create(artifact: ArtifactCreate) -> UUID | None:
    if _stored_nowhere(artifact):
        return None
    with connect() as client:
        return client.create_artifact(artifact).id


async def _acreate(artifact: ArtifactCreate) -> UUID | None:
    if _stored_nowhere(artifact):
        return None
    async with aconnect() as client:
        return (await client.create_artifact(artifact)).id


def _markdown(markdown: str, key: str | None, description: str | None) -> ArtifactCreate:
    return _artifact(ArtifactType.MARKDOWN, markdown, key, description)


def _table(table: Any, key: str | None, description: str | None) -> ArtifactCreate:
    if isinstance(table, tuple):
        table = list(table)
    return _artifact(ArtifactType.TABLE, _without_nan(table), key, description)


def _link(link: str, link_text: str | None, key: str | None, description: str | None) -> ArtifactCreate:
    return _artifact(ArtifactType.LINK, {"link": link, "link_text": link_text}, key, description)


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID | None:
    """Store a markdown text with the run in progress; its id."""
    return _create(_markdown(markdown, key, description))


def create_table_artifact(
    table: dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> UUID | None:
    """Store a table with the run in progress; its id."""
    return _create(_table(table, key, description))


def create_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> UUID | None:
    """Store a link with the run in progress; its id."""
    return _create(_link(link, link_text, key, description))


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID | None:
    return await _acreate(_markdown(markdown, key, description))


async def acreate_table_artifact(
    table: dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> UUID | None:
    return await _acreate(_table(table, key, description))


async def acreate_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> UUID | None:
    return await _acreate(_link(link, link_text, key, description))
