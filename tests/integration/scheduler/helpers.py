"""Deployments with schedules, made straight in the database, and reads of their runs."""

from __future__ import annotations

import uuid
from typing import Any

from baton_schemas.deployments import DeploymentCreate
from baton_schemas.pools import WorkPoolCreate
from baton_server.context import ServerContext
from baton_server.db.deployments import upsert_deployment
from baton_server.db.pools import create_pool


async def deploy(
    ctx: ServerContext,
    schedules: list[dict[str, Any]],
    *,
    pool: str | None = None,
    policy: dict[str, Any] | None = None,
    **fields: Any,
) -> uuid.UUID:
    """A deployment of a new flow with these schedules, in a new pool unless given one."""
    async with ctx.pool.acquire() as conn:
        if pool is None:
            pool = f"pool-{uuid.uuid4().hex[:8]}"
            await create_pool(conn, WorkPoolCreate(name=pool, type="process"))
        create = DeploymentCreate.model_validate(
            {
                "name": "sched",
                "flow_name": fields.pop("flow_name", f"flow-{uuid.uuid4().hex[:8]}"),
                "entrypoint": "flows.py:f",
                "work_pool_name": pool,
                "schedules": schedules,
                **({"schedule_policy": policy} if policy is not None else {}),
                **fields,
            }
        )
        deployment, _ = await upsert_deployment(conn, create)
    return deployment.id


async def runs_of(ctx: ServerContext, deployment_id: uuid.UUID) -> list[dict[str, Any]]:
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT id, idempotency_key, schedule_id, schedule_slot, next_scheduled_time, state_type,
                      state_name, state, parameters, auto_scheduled, run_count
               FROM flow_runs WHERE deployment_id = $1 ORDER BY schedule_slot, created""",
            deployment_id,
        )
    return [dict(r) for r in rows]
