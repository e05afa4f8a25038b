"""Migrations apply from empty, and again without change, even from several processes at once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from baton_server.db.migrate import (
    available_migrations,
    create_database,
    upgrade,
    upgrade_database,
)

from ..support.backends import Backends


async def test_migrations_apply_from_empty_then_are_a_no_op(backends: Backends) -> None:
    base = backends.database_url.rsplit("/", 1)[0]
    name = f"baton_migrate_{uuid.uuid4().hex[:8]}"
    dsn = f"{base}/{name}"
    assert await create_database(dsn)
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


async def _applied_up_to(dsn: str, version: int) -> None:
    """The database as a Baton of migration `version` left it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        for migration in available_migrations():
            if migration.version <= version:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
    finally:
        await conn.close()


async def test_keys_of_the_old_ranked_scopes_keep_what_they_could_do(backends: Backends) -> None:
    """0007: read -> read, admin -> admin, write -> read, events, run, worker, deploy."""
    base = backends.database_url.rsplit("/", 1)[0]
    name = f"baton_migrate_{uuid.uuid4().hex[:8]}"
    dsn = f"{base}/{name}"
    assert await create_database(dsn)
    try:
        await _applied_up_to(dsn, 6)
        conn = await asyncpg.connect(dsn)
        try:
            for scope in ("read", "write", "admin"):
                await conn.execute(
                    "INSERT INTO api_keys (id, name, prefix, key_hash, scopes) VALUES ($1, $2, 'p', $3, $4)",
                    uuid.uuid4(),
                    f"old-{scope}",
                    f"hash-{scope}",
                    [scope],
                )
            applied = await upgrade(conn)
            assert [m.version for m in applied] == [
                m.version for m in available_migrations() if m.version > 6
            ]
            scopes = {r["name"]: r["scopes"] for r in await conn.fetch("SELECT name, scopes FROM api_keys")}
            with_audit = await conn.fetchval("SELECT count(*) FROM audit_log")
        finally:
            await conn.close()
        assert scopes == {
            "old-read": ["read"],
            "old-write": ["read", "events", "run", "worker", "deploy"],
            "old-admin": ["admin"],
        }
        assert with_audit == 0
    finally:
        admin = await asyncpg.connect(f"{base}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_schedules_stored_before_ids_and_slugs_get_them(backends: Backends) -> None:
    """0005: each stored schedule gets an id and the slug a deploy would give it ({kind}-{n})."""
    import json

    from baton_schemas.schedules import DeploymentSchedule

    base = backends.database_url.rsplit("/", 1)[0]
    name = f"baton_migrate_{uuid.uuid4().hex[:8]}"
    dsn = f"{base}/{name}"
    assert await create_database(dsn)
    old = [
        {
            "schedule": {"kind": "cron", "cron": "0 2 * * *", "timezone": "UTC", "day_or": True},
            "active": True,
        },
        {"schedule": {"kind": "interval", "interval_seconds": 60.0}, "active": False},
        {"schedule": {"kind": "cron", "cron": "0 3 * * *"}, "parameters": {"x": 1}},
    ]
    try:
        await _applied_up_to(dsn, 4)
        conn = await asyncpg.connect(dsn)
        try:
            flow_id = uuid.uuid4()
            await conn.execute("INSERT INTO flows (id, name, slug) VALUES ($1, 'f', 'f')", flow_id)
            await conn.execute(
                "INSERT INTO work_pools (id, name, type) VALUES ($1, 'p', 'process')", uuid.uuid4()
            )
            for deployment, schedules in (("with", old), ("without", [])):
                await conn.execute(
                    """INSERT INTO deployments (id, name, flow_id, entrypoint, work_pool_name, schedules)
                       VALUES ($1, $2, $3, 'f.py:f', 'p', $4::jsonb)""",
                    uuid.uuid4(),
                    deployment,
                    flow_id,
                    json.dumps(schedules),
                )
            await upgrade(conn)
            rows = {
                r["name"]: r
                for r in await conn.fetch("SELECT name, schedules, schedule_policy FROM deployments")
            }
        finally:
            await conn.close()
        migrated = [DeploymentSchedule.model_validate(s) for s in json.loads(rows["with"]["schedules"])]
        assert [s.slug for s in migrated] == ["cron-1", "interval-1", "cron-2"]
        assert len({s.id for s in migrated}) == 3 and None not in {s.id for s in migrated}
        assert [s.active for s in migrated] == [True, False, True] and migrated[2].parameters == {"x": 1}
        assert json.loads(rows["without"]["schedules"]) == []
        assert json.loads(rows["with"]["schedule_policy"]) == {}
    finally:
        admin = await asyncpg.connect(f"{base}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
