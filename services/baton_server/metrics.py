"""The server's Prometheus metrics: counted where things happen, gauges read when scraped.

Counters and histograms are module-level objects of prometheus-client's default registry (its
convention: one per process, cheap to update, nothing to pass around), updated by the module
that does the work: the tracker (transitions), the scheduler (lateness, dispatch), the router
(matching, firings), the events service (ingest), the outbox and the consumers (dead letters).
Gauges of what is stored (runs by state, the outbox backlog) and of the broker (queue depths)
are read by `Snapshot.refresh` when `/metrics` is scraped, at most once per `max_age` seconds.

Labels are bounded: states, verdicts, action kinds, queue names and deployment names, never a
run, event or task id. Every name is `baton_`-prefixed; `_total` counters, `_seconds` units.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from baton_schemas.topology import (
    DEAD_QUEUE,
    EVENT_STORE_QUEUE,
    ROUTER_QUEUE,
    TRACKER_QUEUE,
    TRACKER_RPC_QUEUE,
    pool_queue_name,
)

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger(__name__)

# seconds: from a millisecond to a minute (transitions, matching), to an hour (lateness)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- the tracker ---------------------------------------------------------------------------
TRANSITIONS = Counter(
    "baton_flow_run_transitions_total",
    "Flow-run state proposals decided, by proposed state type and verdict.",
    ["state", "verdict"],
)
TRANSITION_SECONDS = Histogram(
    "baton_flow_run_transition_duration_seconds",
    "Time to decide and write one flow-run state proposal (before its commit).",
    buckets=FAST_BUCKETS,
)
TASK_RUN_STATES = Counter("baton_task_run_states_total", "Task-run states stored, by state type.", ["state"])
LOGS_STORED = Counter("baton_logs_stored_total", "Run log records stored.")

# --- the scheduler -------------------------------------------------------------------------
LATENESS = Histogram(
    "baton_scheduler_lateness_seconds",
    "How long after its scheduled time a run was dispatched (0 when dispatched ahead of time).",
    buckets=LATENESS_BUCKETS,
)
DISPATCHED = Counter("baton_scheduler_dispatched_total", "Runs dispatched to a work pool's queue.")
SCHEDULED_RUNS = Counter("baton_scheduler_runs_created_total", "Runs created ahead of time by schedules.")
MARKED_LATE = Counter("baton_scheduler_marked_late_total", "Runs marked Late.")

# --- the router ----------------------------------------------------------------------------
ROUTER_EVENTS = Counter(
    "baton_router_events_total", "Events the router consumed, by whether a trigger matched.", ["outcome"]
)
ROUTER_MATCH_SECONDS = Histogram(
    "baton_router_match_duration_seconds",
    "Time to match one event against the triggers' index.",
    buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1),
)
ROUTER_APPLY_SECONDS = Histogram(
    "baton_router_apply_duration_seconds",
    "Time to apply one batch of matched events (windows, firings, their effects) and commit it.",
    buckets=FAST_BUCKETS,
)
ROUTER_FIRINGS = Counter("baton_router_firings_total", "Automation firings, by action kind.", ["action"])
ROUTER_FAILURES = Counter(
    "baton_router_action_failures_total", "Actions that failed, by action kind.", ["action"]
)

# --- events --------------------------------------------------------------------------------
EVENTS_STORED = Counter("baton_events_stored_total", "Events written to the event store.")
EVENTS_RECEIVED = Counter("baton_events_received_total", "Events received by the API, by path.", ["source"])

# --- the broker ----------------------------------------------------------------------------
OUTBOX_PUBLISHED = Counter("baton_outbox_published_total", "Outbox rows published and confirmed.")
DEAD_LETTERED = Counter(
    "baton_dead_lettered_total", "Messages a consumer dead-lettered, by its queue.", ["queue"]
)

# --- read when scraped ---------------------------------------------------------------------
FLOW_RUNS = Gauge(
    "baton_flow_runs",
    "Flow runs stored, by state type and deployment ('' for none).",
    ["state", "deployment"],
)
OUTBOX_BACKLOG = Gauge("baton_outbox_backlog", "Outbox rows not yet published and deleted.")
OUTBOX_OLDEST = Gauge("baton_outbox_oldest_age_seconds", "Age of the oldest outbox row (0 when empty).")
QUEUE_MESSAGES = Gauge("baton_queue_messages", "Messages ready in a queue (its consumer lag).", ["queue"])
QUEUE_CONSUMERS = Gauge("baton_queue_consumers", "Consumers of a queue.", ["queue"])
SCRAPE_ERRORS = Counter(
    "baton_metrics_refresh_errors_total", "Scrape-time reads that failed, by what was read.", ["what"]
)

_RUNS = """
    SELECT fr.state_type, coalesce(d.name, '') AS deployment, count(*) AS n
    FROM flow_runs fr LEFT JOIN deployments d ON d.id = fr.deployment_id
    GROUP BY 1, 2"""
_OUTBOX = "SELECT count(*) AS n, extract(epoch FROM now() - min(created)) AS oldest FROM outbox"
_POOL_QUEUES = (
    "SELECT p.name AS pool, q.name AS queue FROM work_queues q JOIN work_pools p ON p.id = q.pool_id"
)
SERVICE_QUEUES = (TRACKER_QUEUE, TRACKER_RPC_QUEUE, EVENT_STORE_QUEUE, ROUTER_QUEUE, DEAD_QUEUE)


def observe_since(histogram: Histogram, started: float) -> None:
    histogram.observe(time.perf_counter() - started)


class Snapshot:
    """The scrape-time gauges, refreshed at most once per `max_age` seconds (several scrapers,
    or a scraper and a person, cost the database one read)."""

    def __init__(self, ctx: ServerContext, *, max_age: float = 5.0, timeout: float = 5.0) -> None:
        self._ctx = ctx
        self._max_age = max_age
        self._timeout = timeout
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self._labels: dict[Gauge, set[tuple[str, ...]]] = {}

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self._max_age:
                return
            pool_queues = await self._database()
            await self._broker(pool_queues)
            self._at = time.monotonic()

    def _set(self, gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
        """Set a labelled gauge to exactly these series (those gone since are removed)."""
        for gone in self._labels.get(gauge, set()) - values.keys():
            gauge.remove(*gone)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        self._labels[gauge] = set(values)

    async def _database(self) -> list[str]:
        try:
            async with self._ctx.pool.acquire(timeout=self._timeout) as conn:
                runs = await conn.fetch(_RUNS, timeout=self._timeout)
                outbox = await conn.fetchrow(_OUTBOX, timeout=self._timeout)
                queues = await conn.fetch(_POOL_QUEUES, timeout=self._timeout)
        except Exception as exc:
            SCRAPE_ERRORS.labels("database").inc()
            log.warning("metrics: could not read the database: %r", exc)
            return []
        self._set(FLOW_RUNS, {(r["state_type"], r["deployment"]): r["n"] for r in runs})
        if outbox is not None:
            OUTBOX_BACKLOG.set(outbox["n"])
            OUTBOX_OLDEST.set(float(outbox["oldest"] or 0.0))
        return [pool_queue_name(r["pool"], r["queue"]) for r in queues]

    async def _broker(self, pool_queues: list[str]) -> None:
        messages: dict[tuple[str, ...], float] = {}
        consumers: dict[tuple[str, ...], float] = {}
        channel: Any = None
        try:
            for name in (*SERVICE_QUEUES, *pool_queues):
                if channel is None or not channel.is_open:
                    channel = await self._ctx.link.connection.channel()
                try:
                    _, ready, consuming = await channel.declare_queue(
                        name, passive=True, timeout=self._timeout
                    )
                except Exception:
                    continue  # not declared (yet): no series; the broker closed the channel
                messages[(name,)] = ready
                consumers[(name,)] = consuming
        except Exception as exc:
            SCRAPE_ERRORS.labels("broker").inc()
            log.warning("metrics: could not read the queues: %r", exc)
            return
        finally:
            if channel is not None and channel.is_open:
                try:
                    await channel.close(timeout=self._timeout)
                except Exception:
                    pass
        self._set(QUEUE_MESSAGES, messages)
        self._set(QUEUE_CONSUMERS, consumers)
