"""Migrations apply from empty, and again without change, even from several processes at once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from baton_server.db.migrate import available_migrations, ensure_database, upgrade_database

from ..support.backends import Backends


async def test_migrations_apply_from_empty_then_are_a_no_op(backends: Backends) -> None:
    base = backends.database_url.rsplit("/", 1)[0]
    name = f"baton_migrate_{uuid.uuid4().hex[:8]}"
    dsn = f"{base}/{name}"
    await ensure_database(dsn)
    try:
        # three racing upgraders: the advisory lock lets one apply, the others find nothing to do
        results = await asyncio.gather(*(upgrade_database(dsn) for _ in range(3)))
        assert sorted(len(r) for r in results) == [0, 0, len(available_migrations())]
        assert await upgrade_database(dsn) == []
        conn = await asyncpg.connect(dsn)
        try:
            versions = [
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
            ]
            tables = {
                r["tablename"]
                for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
        finally:
            await conn.close()
        assert versions == [m.version for m in available_migrations()]
        assert {"flows", "flow_runs", "task_runs", "states", "logs", "outbox", "api_keys"} <= tables
    finally:
        admin = await asyncpg.connect(f"{base}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
