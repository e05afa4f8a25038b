"""Artifacts: written once, read by run, by key (a key's history) or newest per key."""

from __future__ import annotations

import uuid

import asyncpg

from baton_schemas.artifacts import Artifact, ArtifactCreate, ArtifactType

from .types import Connection


def _artifact(row: asyncpg.Record) -> Artifact:
    return Artifact(
        id=row["id"],
        key=row["key"],
        type=ArtifactType(row["type"]),
        description=row["description"],
        data=row["data"],
        flow_run_id=row["flow_run_id"],
        task_run_id=row["task_run_id"],
        created=row["created"],
    )


async def create_artifact(conn: Connection, create: ArtifactCreate) -> Artifact:
    row = await conn.fetchrow(
        """INSERT INTO artifacts (id, key, type, description, data, flow_run_id, task_run_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        uuid.uuid4(),
        create.key,
        create.type.value,
        create.description,
        create.data,
        create.flow_run_id,
        create.task_run_id,
    )
    assert row is not None
    return _artifact(row)


async def read_artifact(conn: Connection, artifact_id: uuid.UUID) -> Artifact | None:
    row = await conn.fetchrow("SELECT * FROM artifacts WHERE id = $1", artifact_id)
    return _artifact(row) if row else None


async def list_artifacts(
    conn: Connection,
    *,
    key: str | None = None,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    type: ArtifactType | None = None,
    latest: bool = False,
    limit: int = 200,
) -> list[Artifact]:
    """Newest first. `latest`: only the newest artifact of each key (artifacts without a key are
    left out, as the reference system's latest listing does)."""
    where = """($1::text IS NULL OR key = $1) AND ($2::uuid IS NULL OR flow_run_id = $2)
        AND ($3::uuid IS NULL OR task_run_id = $3) AND ($4::text IS NULL OR type = $4)"""
    if latest:
        query = f"""SELECT * FROM (
                SELECT DISTINCT ON (key) * FROM artifacts WHERE key IS NOT NULL AND {where}
                ORDER BY key, created DESC, id
            ) newest ORDER BY created DESC LIMIT $5"""
    else:
        query = f"SELECT * FROM artifacts WHERE {where} ORDER BY created DESC, id LIMIT $5"
    rows = await conn.fetch(
        query, key, flow_run_id, task_run_id, type.value if type is not None else None, limit
    )
    return [_artifact(r) for r in rows]


async def delete_artifacts(
    conn: Connection, *, key: str | None = None, artifact_id: uuid.UUID | None = None
) -> int:
    """Every version of a key, or one artifact by id; how many went."""
    rows = await conn.fetch(
        """DELETE FROM artifacts WHERE ($1::text IS NOT NULL AND key = $1) OR id = $2 RETURNING id""",
        key,
        artifact_id,
    )
    return len(rows)
