"""Dispatch: a due deployment run becomes a message on its work queue.

A run is dispatched once per scheduling: `dispatched_version` records the `state_version` it had
when its message was written, so a run that goes back to Scheduled (AwaitingRetry,
AwaitingConcurrencySlot) is dispatched again when it is due. A dispatch that has not led to a
claim after `redispatch_after_seconds` (its message was dead-lettered after repeated failures,
or lost with a queue) is sent again: a duplicate is harmless, the claim is taken once. Paused
pools and queues are skipped until resumed.
"""

from __future__ import annotations

import uuid

import asyncpg

from baton import _tracing
from baton_schemas import utcnow
from baton_schemas.envelopes import FlowRunDispatch
from baton_schemas.job_templates import template_defaults
from baton_schemas.topology import RUNS, pool_routing_key

from ..broker.outbox import Outbox, OutboxMessage, OutboxRow
from ..db.types import Connection
from ..metrics import DISPATCHED, LATENESS

_CLAIM_FOR_DISPATCH = """
    WITH due AS (
        SELECT fr.id FROM flow_runs fr
        JOIN work_pools p ON p.name = fr.work_pool_name AND NOT p.paused
        JOIN work_queues q ON q.pool_id = p.id AND q.name = fr.work_queue_name AND NOT q.paused
        WHERE fr.state_type = 'SCHEDULED' AND NOT fr.overlap_held
          AND fr.next_scheduled_time <= now() + make_interval(secs => $2)
          AND (fr.dispatched_version IS DISTINCT FROM fr.state_version
               -- a dispatch that never led to a claim (lost, dead-lettered) is sent again
               OR fr.dispatched_at < now() - make_interval(secs => $4))
          AND ($1::uuid[] IS NULL OR fr.id = ANY($1::uuid[]))
        ORDER BY fr.next_scheduled_time
        LIMIT $3
        FOR UPDATE OF fr SKIP LOCKED
    ), marked AS (
        UPDATE flow_runs fr SET dispatched_version = fr.state_version, dispatched_at = now()
        FROM due WHERE fr.id = due.id
        RETURNING fr.*
    )
    SELECT m.id, m.name, m.state_version, m.run_count, m.tags, m.next_scheduled_time, m.work_pool_name,
           m.work_queue_name, m.parameters, m.job_variables AS run_job_variables, m.deployment_id,
           f.name AS flow_name, d.name AS deployment_name, d.entrypoint, d.pull_steps,
           d.job_variables AS deployment_job_variables, p.base_job_template,
           d.timeout_seconds, d.log_prints, m.traceparent
    FROM marked m
    JOIN flows f ON f.id = m.flow_id
    JOIN work_pools p ON p.name = m.work_pool_name
    LEFT JOIN deployments d ON d.id = m.deployment_id"""


def dispatch_message(row: asyncpg.Record, traceparent: str | None = None) -> OutboxMessage:
    job_variables = {
        **template_defaults(row["base_job_template"]),
        **(row["deployment_job_variables"] or {}),
        **row["run_job_variables"],
    }
    dispatch = FlowRunDispatch(
        flow_run_id=row["id"],
        flow_run_name=row["name"],
        flow_name=row["flow_name"],
        deployment_id=row["deployment_id"],
        deployment_name=row["deployment_name"],
        state_version=row["state_version"],
        run_count=row["run_count"],
        tags=list(row["tags"]),
        scheduled_time=row["next_scheduled_time"],
        work_pool_name=row["work_pool_name"],
        work_queue_name=row["work_queue_name"],
        entrypoint=row["entrypoint"],
        pull_steps=row["pull_steps"] or [],
        parameters=row["parameters"],
        job_variables=job_variables,
        job_template=row["base_job_template"],
        timeout_seconds=row["timeout_seconds"],
        log_prints=row["log_prints"],
    )
    return OutboxMessage(
        exchange=RUNS,
        routing_key=pool_routing_key(row["work_pool_name"], row["work_queue_name"]),
        message_id=dispatch.id,
        body=dispatch.to_json(),
        mandatory=True,  # a run must reach a queue; an unroutable one is dead-lettered, not lost
        traceparent=traceparent,
    )


async def dispatch_runs(
    conn: Connection,
    run_ids: list[uuid.UUID] | None,
    *,
    within_seconds: float,
    redispatch_after_seconds: float = 300.0,
    limit: int = 500,
) -> list[OutboxRow]:
    """Write dispatch messages for due runs (these ids, or any) inside the caller's transaction."""
    rows = await conn.fetch(_CLAIM_FOR_DISPATCH, run_ids, within_seconds, limit, redispatch_after_seconds)
    if rows:
        now = utcnow()
        for row in rows:
            LATENESS.observe(max(0.0, (now - row["next_scheduled_time"]).total_seconds()))
        DISPATCHED.inc(len(rows))
    if not _tracing.enabled():
        return await Outbox.add(conn, [dispatch_message(r) for r in rows])
    return await Outbox.add(conn, [_traced_dispatch(r) for r in rows])


def _traced_dispatch(row: asyncpg.Record) -> OutboxMessage:
    """A dispatch in the run's trace (a scheduled run's trace starts here: it was made ahead)."""
    attributes = {"baton.flow_run.id": row["id"], "baton.work_pool": row["work_pool_name"]}
    with _tracing.span(
        "dispatch flow run", parent=row["traceparent"], kind="PRODUCER", attributes=attributes
    ):
        return dispatch_message(row, _tracing.current())
