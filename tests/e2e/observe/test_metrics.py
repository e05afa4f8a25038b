"""`/metrics` of a real server and a worker's metrics port: they parse with Prometheus's text
parser, move as runs happen, and carry no unbounded label (no id of a run, task or event)."""

from __future__ import annotations

import re

import httpx

from .conftest import Samples, Stack, scrape, value, wait_until

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_metrics_move_as_runs_happen(stack: Stack) -> None:
    before = scrape(stack.metrics_url)
    worker_before = scrape(stack.worker_metrics)
    good = stack.deployment("flows.py:doubled")
    bad = stack.deployment("flows.py:fails")
    runs = [stack.run(good, parameters={"n": 3}), stack.run(good), stack.run(bad)]
    finals = [stack.wait_final(run["id"]) for run in runs]
    assert finals == ["COMPLETED", "COMPLETED", "FAILED"]
    response = httpx.post(
        f"{stack.server.api_url}/events",
        json=[{"event": "observe.ping", "resource": {"baton.resource.id": "observe.test"}}],
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    assert response.status_code == 202, response.text

    def moved() -> Samples | None:
        after = scrape(stack.metrics_url)
        stored = value(after, "baton_events_stored_total") - value(before, "baton_events_stored_total")
        if stored < 1 + 3 * 4:  # the ping, and every run's four states
            return None
        # the stored counts are read at most every BATON_METRICS_MAX_AGE_SECONDS: waited for too
        return after if value(after, "baton_flow_runs", deployment=good["name"]) == 2 else None

    after = wait_until(moved, what="the metrics to show the runs")

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # the server: transitions, tasks, dispatch, events, HTTP, the stored runs, the outbox, queues
    assert grew("baton_flow_run_transitions_total", state="RUNNING", verdict="ACCEPT") == 3
    assert grew("baton_flow_run_transitions_total", state="COMPLETED", verdict="ACCEPT") == 2
    assert grew("baton_flow_run_transitions_total", state="FAILED", verdict="ACCEPT") == 1
    assert grew("baton_flow_run_transition_duration_seconds_count") >= 9
    assert grew("baton_task_run_states_total", state="COMPLETED") == 3 + 2
    assert grew("baton_scheduler_dispatched_total") == 3
    assert grew("baton_scheduler_lateness_seconds_count") == 3
    assert grew("baton_events_received_total", source="http") == 1
    assert grew("baton_outbox_published_total") >= 3 * 4
    route = "/api/deployments/{deployment_id}/runs"
    assert grew("baton_http_requests_total", method="POST", route=route, status="201") == 3
    assert grew("baton_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert value(after, "baton_flow_runs", state="COMPLETED", deployment=good["name"]) == 2
    assert value(after, "baton_flow_runs", state="FAILED", deployment=bad["name"]) == 1
    assert ("baton_outbox_backlog", ()) in after
    assert ("baton_outbox_oldest_age_seconds", ()) in after
    pool_queue = f"baton.pool.{stack.pool}.default"
    assert value(after, "baton_queue_consumers", queue=pool_queue) >= 1
    assert ("baton_queue_messages", (("queue", pool_queue),)) in after
    assert ("baton_queue_messages", (("queue", "baton.dead"),)) in after
    assert grew("baton_router_events_total", outcome="unmatched") >= 1 + 3 * 4  # no automation
    assert grew("baton_router_match_duration_seconds_count") >= 1 + 3 * 4

    # the worker: its claims, its start latency, its slots
    worker = scrape(stack.worker_metrics)
    assert (
        value(worker, "baton_worker_claims_total", verdict="ACCEPT")
        - value(worker_before, "baton_worker_claims_total", verdict="ACCEPT")
        == 3
    )
    assert (
        value(worker, "baton_worker_run_start_latency_seconds_count")
        - value(worker_before, "baton_worker_run_start_latency_seconds_count")
        == 3
    )
    assert value(worker, "baton_worker_process_exits_total", outcome="reported") >= 3
    assert value(worker, "baton_worker_slots") == 4
    assert ("baton_worker_slots_in_use", ()) in worker

    # bounded labels: no id anywhere, in either process
    for samples in (after, worker):
        unbounded = [(n, labels) for n, labels in samples for _, v in labels if UUID.search(v)]
        assert not unbounded, unbounded


def test_metrics_need_no_key_and_routes_are_templates(stack: Stack) -> None:
    run_id = "00000000-0000-0000-0000-000000000000"
    response = stack.http.get(f"/flow_runs/{run_id}")
    assert response.status_code == 404
    unauthorised = httpx.get(f"{stack.server.api_url}/flow_runs")
    assert unauthorised.status_code == 401
    samples = scrape(stack.metrics_url)  # without a key
    assert value(samples, "baton_http_requests_total", route="/api/flow_runs/{run_id}", status="404") >= 1
    assert value(samples, "baton_http_requests_total", route="other", status="401") >= 1
