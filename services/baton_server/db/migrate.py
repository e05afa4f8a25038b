"""Numbered SQL migrations, applied in order under an advisory lock, each in its own transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from .types import Connection

log = logging.getLogger(__name__)

# Any constant works; all Baton processes agree on it so only one migrates at a time.
MIGRATION_LOCK_ID = 0x0BA7_0001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("baton_server.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


async def upgrade(conn: Connection) -> list[Migration]:
    """Apply every migration not yet applied. Safe to run from several processes at once."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in available_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def upgrade_database(dsn: str) -> list[Migration]:
    conn = await asyncpg.connect(dsn)
    try:
        return await upgrade(conn)
    finally:
        await conn.close()


async def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist (for a fresh machine)."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return
    base, _, name = dsn.rpartition("/")
    name = name.split("?")[0]
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"refusing to create a database with the name {name!r}")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await admin.close()
