"""A worker's Prometheus metrics, served on `BATON_WORKER_METRICS_PORT` when it is set.

Labels are bounded (verdicts); the pool is a target label to give the scrape job, not a metric
label, and no run id ever is one.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

START_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

CLAIMS = Counter(
    "baton_worker_claims_total", "Claims the worker proposed, by the tracker's verdict.", ["verdict"]
)
SLOTS = Gauge("baton_worker_slots", "Flow runs the worker may run at once (its --limit; absent: no limit).")
SLOTS_IN_USE = Gauge("baton_worker_slots_in_use", "Flow runs the worker is claiming or running now.")
RUN_START_SECONDS = Histogram(
    "baton_worker_run_start_latency_seconds",
    "From a run's scheduled time to its process started (0 if it started early).",
    buckets=START_BUCKETS,
)
PROCESS_EXITS = Counter(
    "baton_worker_process_exits_total", "Flow-run processes that ended, by how.", ["outcome"]
)


def serve_metrics(port: int, host: str, limit: int | None, in_use: Callable[[], float]) -> None:
    """Serve the process's metrics on a thread of prometheus-client's."""
    if limit is not None:
        SLOTS.set(limit)
    SLOTS_IN_USE.set_function(in_use)
    start_http_server(port, addr=host)
