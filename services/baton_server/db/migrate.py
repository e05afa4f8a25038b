"""Numbered SQL migrations, applied in order under an advisory lock, each in its own transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


class DatabaseMissing(RuntimeError):
    """The database named in the URL does not exist. Baton never creates one by surprise: a typo
    in the URL would start a fresh, empty Baton."""

    def __init__(self, dsn: str) -> None:
        self.name = database_name(dsn)
        super().__init__(
            f"database {self.name!r} does not exist on {_server_of(dsn)}: check BATON_DATABASE_URL, "
            "or create it with `baton server db upgrade --create`"
        )


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


def _server_of(dsn: str) -> str:
    parts = urlsplit(dsn)
    return (parts.hostname and f"{parts.hostname}:{parts.port or 5432}") or "the server"


async def _connect(dsn: str) -> asyncpg.Connection[Any]:
    try:
        return await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseMissing(dsn) from exc


async def upgrade_database(dsn: str) -> list[Migration]:
    """Apply pending migrations. Raises DatabaseMissing if the database does not exist."""
    conn = await _connect(dsn)
    try:
        return await upgrade(conn)
    finally:
        await conn.close()


async def database_exists(dsn: str) -> bool:
    try:
        conn = await _connect(dsn)
    except DatabaseMissing:
        return False
    await conn.close()
    return True


async def create_database(dsn: str) -> bool:
    """Create the database named in `dsn` (connecting to the server's `postgres` database).
    Returns False if it existed already."""
    if await database_exists(dsn):
        return False
    name = database_name(dsn)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"refusing to create a database with the name {name!r}")
    admin_dsn = urlunsplit(urlsplit(dsn)._replace(path="/postgres"))
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await admin.close()
    log.info("created database %s", name)
    return True
