"""Variables: named JSON values, created, overwritten and deleted by name."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from baton_schemas.variables import StoredVariable

from .types import Connection


class VariableExists(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"variable {name!r} already exists: overwrite it (PUT, or `--overwrite`)")


def _variable(row: asyncpg.Record) -> StoredVariable:
    return StoredVariable(
        id=row["id"],
        name=row["name"],
        value=row["value"],
        tags=list(row["tags"]),
        created=row["created"],
        updated=row["updated"],
    )


async def create_variable(conn: Connection, name: str, value: Any, tags: list[str]) -> StoredVariable:
    """A new variable; VariableExists if the name is taken."""
    row = await conn.fetchrow(
        """INSERT INTO variables (id, name, value, tags) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO NOTHING RETURNING *""",
        uuid.uuid4(),
        name,
        value,
        tags,
    )
    if row is None:
        raise VariableExists(name)
    return _variable(row)


async def write_variable(
    conn: Connection, name: str, value: Any, tags: list[str]
) -> tuple[StoredVariable, bool]:
    """Create the variable or overwrite its value and tags; whether it was created."""
    row = await conn.fetchrow(
        """INSERT INTO variables (id, name, value, tags) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, tags = EXCLUDED.tags,
               updated = now()
           RETURNING *, (xmax = 0) AS inserted""",
        uuid.uuid4(),
        name,
        value,
        tags,
    )
    assert row is not None
    return _variable(row), bool(row["inserted"])


async def read_variable(conn: Connection, name: str) -> StoredVariable | None:
    row = await conn.fetchrow("SELECT * FROM variables WHERE name = $1", name)
    return _variable(row) if row else None


async def list_variables(
    conn: Connection, *, tag: list[str] | None = None, prefix: str | None = None, limit: int = 200
) -> list[StoredVariable]:
    """By name; with `tag`, those holding every tag given; with `prefix`, names beginning so."""
    rows = await conn.fetch(
        """SELECT * FROM variables
           WHERE ($1::text[] IS NULL OR tags @> $1) AND ($2::text IS NULL OR starts_with(name, $2))
           ORDER BY name LIMIT $3""",
        tag or None,
        prefix,
        limit,
    )
    return [_variable(r) for r in rows]


async def delete_variable(conn: Connection, name: str) -> bool:
    return await conn.fetchval("DELETE FROM variables WHERE name = $1 RETURNING true", name) is not None
