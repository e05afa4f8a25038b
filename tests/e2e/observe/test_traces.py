"""A deployment run is one trace across processes: the caller's request, the server's span of
it and of the dispatch, the worker's claim and run, the flow run in its own process and each
task run, and back: the tracker's span of each transition the worker and the run's process
proposed, all linked parent to child, exported over OTLP to a receiver run by the test."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys

from baton._transport.http import BatonClient
from baton_schemas.envelopes import ProposeState
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Completed, Running, TransitionResult, Verdict

from ...support.otlp import ReceivedSpan
from .conftest import Stack, wait_until

STORED = "store task-run states"
EXPECTED = {
    "POST /api/deployments/{deployment_id}/runs",
    "dispatch flow run",
    "claim and run flow run",
    "flow doubled",
    # the tracker's, of what the worker (the claim) and the run's process (the rest) proposed
    # over AMQP (the process through its worker's relay)
    "transition Pending",
    "transition Running",
    "transition Completed",
    STORED,
}


def test_a_run_is_one_trace_from_the_request_to_its_tasks(stack: Stack) -> None:
    deployment = stack.deployment("flows.py:doubled")
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    response = stack.http.post(
        f"/deployments/{deployment['id']}/runs",
        json={"parameters": {"n": 2}},
        headers={"traceparent": f"00-{trace_id}-{caller}-01"},
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    assert stack.wait_final(run_id) == "COMPLETED"

    def whole() -> list[ReceivedSpan] | None:
        spans = [s for s in stack.otlp.received() if s.trace_id == trace_id]
        tasks = [s for s in spans if s.name.startswith("task ")]
        stored = sum(int(s.attributes["baton.task_run_states.count"]) for s in spans if s.name == STORED)
        # every task-run state stored: 2 tasks x Pending, Running, Completed (in one batch or more)
        return spans if len(tasks) == 2 and stored == 6 and EXPECTED <= {s.name for s in spans} else None

    spans = wait_until(whole, what="the run's spans from every process")
    by_name = {s.name: s for s in spans}
    request = by_name["POST /api/deployments/{deployment_id}/runs"]
    dispatch = by_name["dispatch flow run"]
    worker = by_name["claim and run flow run"]
    flow = by_name["flow doubled"]
    tasks = [s for s in spans if s.name.startswith("task ")]

    # parent to child, across the server, the worker and the run's process
    assert request.parent_id == caller and request.service == "baton-server"
    assert dispatch.parent_id == request.span_id and dispatch.service == "baton-server"
    assert worker.parent_id == dispatch.span_id and worker.service == "baton-worker"
    assert flow.parent_id == worker.span_id and flow.service == "baton-flow-run"
    assert {t.parent_id for t in tasks} == {flow.span_id}
    assert {t.service for t in tasks} == {"baton-flow-run"}
    assert flow.attributes["baton.flow_run.id"] == run_id
    assert worker.attributes["baton.flow_run.id"] == run_id
    assert {t.attributes["baton.flow_run.id"] for t in tasks} == {run_id}

    # and back: the tracker's spans of the transitions, children of their proposers' spans
    claim, running, completed = (by_name[f"transition {n}"] for n in ("Pending", "Running", "Completed"))
    assert claim.parent_id == worker.span_id
    assert running.parent_id == flow.span_id and completed.parent_id == flow.span_id
    for transition, before, after in (
        (claim, "SCHEDULED", "PENDING"),
        (running, "PENDING", "RUNNING"),
        (completed, "RUNNING", "COMPLETED"),
    ):
        assert transition.service == "baton-server"
        assert transition.attributes["baton.flow_run.id"] == run_id
        assert transition.attributes["baton.state.from"] == before
        assert transition.attributes["baton.state.to"] == after
        assert transition.attributes["baton.transition.verdict"] == "ACCEPT"
    assert {s.parent_id for s in spans if s.name == STORED} == {flow.span_id}


def test_states_reported_over_http_join_the_reporters_trace(stack: Stack) -> None:
    """The HTTP transport (a run's process reporting to the API) sends its span along: the API's
    span of the request is its child, and the transition's span the request's, accepted or not."""
    trace_id, reporter = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{reporter}-01"

    async def report() -> tuple[str, list[TransitionResult]]:
        async with BatonClient(stack.server.api_url, stack.api_key) as client:
            run = await client.create_flow_run(FlowRunCreate(flow_name="traced-over-http"))
            results = [
                await client.propose_state(
                    ProposeState(flow_run_id=run.id, state=state), traceparent=traceparent
                )
                for state in (Running(), Completed(), Running())
            ]
            return str(run.id), results

    run_id, results = asyncio.run(report())
    assert [r.verdict for r in results] == [Verdict.ACCEPT, Verdict.ACCEPT, Verdict.REJECT]

    def all_three() -> list[ReceivedSpan] | None:
        spans = [s for s in stack.otlp.received() if s.trace_id == trace_id]
        return spans if len([s for s in spans if s.name.startswith("transition ")]) == 3 else None

    spans = wait_until(all_three, what="the transitions' spans")
    requests = {s.span_id: s for s in spans if s.name == "POST /api/flow_runs/{run_id}/set_state"}
    assert len(requests) == 3 and {r.parent_id for r in requests.values()} == {reporter}
    transitions = [s for s in spans if s.name.startswith("transition ")]
    assert all(t.parent_id in requests for t in transitions)
    assert len({t.parent_id for t in transitions}) == 3  # one per request
    seen = sorted(
        (
            t.attributes["baton.state.from"],
            t.attributes["baton.state.to"],
            t.attributes["baton.transition.verdict"],
        )
        for t in transitions
    )
    assert {t.attributes["baton.flow_run.id"] for t in transitions} == {run_id}
    assert seen == [
        ("COMPLETED", "RUNNING", "REJECT"),
        ("RUNNING", "COMPLETED", "ACCEPT"),
        ("SCHEDULED", "RUNNING", "ACCEPT"),  # a run created without a state is Scheduled now
    ]


def test_a_run_an_automation_makes_from_a_traced_event_joins_its_trace(stack: Stack) -> None:
    deployment = stack.deployment("flows.py:doubled")
    name = f"observe.traced.{secrets.token_hex(4)}"
    stack.post(
        "/automations",
        {
            "name": f"on-{name}",
            "trigger": {"expect": [name]},
            "actions": [{"type": "run-deployment", "deployment": deployment["id"], "parameters": {"n": 1}}],
        },
    )
    trace_id = secrets.token_hex(16)

    def fired() -> list[dict[str, object]] | None:
        # the router loads a new automation on a NOTIFY: an event sent before that matches nothing
        caller = secrets.token_hex(8)
        response = stack.http.post(
            "/events",
            json=[{"event": name, "resource": {"baton.resource.id": "observe.traced"}}],
            headers={"traceparent": f"00-{trace_id}-{caller}-01"},
        )
        assert response.status_code == 202, response.text
        runs: list[dict[str, object]] = stack.http.get(
            "/flow_runs", params={"deployment_id": deployment["id"]}
        ).json()["items"]
        return runs or None

    run_id = str(wait_until(fired, what="the automation to make a run")[0]["id"])
    assert stack.wait_final(run_id) == "COMPLETED"

    def chain() -> list[str] | None:
        spans = {s.span_id: s for s in stack.otlp.received() if s.trace_id == trace_id}
        flows = [
            s
            for s in spans.values()
            if s.name == "flow doubled" and s.attributes["baton.flow_run.id"] == run_id
        ]
        if not flows:
            return None
        names = []
        span: ReceivedSpan | None = flows[0]
        while span is not None:
            names.append(span.name)
            span = spans.get(span.parent_id)
        return names if names[-1] == "POST /api/events" else None

    # every span exported, from the run's process back to the request that sent the event
    assert wait_until(chain, what="the automation's run in the event's trace") == [
        "flow doubled",
        "claim and run flow run",
        "dispatch flow run",
        "fire automation",
        "POST /api/events",
    ]


def test_a_flow_run_started_by_hand_is_a_trace_with_the_trackers_spans(stack: Stack) -> None:
    """`python flows.py` with an OTLP endpoint set, no worker: the flow run is a trace of its
    own, its tasks are spans in it, and the server's transitions join it over HTTP."""
    script = stack.folder / "by_hand.py"
    script.write_text("from flows import doubled\n\ndoubled(3)\n")
    env = {
        **os.environ,
        "BATON_API_URL": stack.server.api_url,
        "BATON_API_KEY": stack.api_key,
        "BATON_OTEL_ENDPOINT": stack.otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    env.pop("BATON_BROKER_URL", None)  # the HTTP path
    done = subprocess.run(
        [sys.executable, str(script)], cwd=stack.folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]

    def whole() -> list[ReceivedSpan] | None:
        flows = [s for s in stack.otlp.received() if s.name == "flow doubled" and not s.parent_id]
        if not flows:
            return None
        spans = [s for s in stack.otlp.received() if s.trace_id == flows[-1].trace_id]
        names = [s.name for s in spans]
        tasks = [n for n in names if n.startswith("task ")]
        return spans if len(tasks) == 3 and "transition Completed" in names else None

    spans = wait_until(whole, what="the hand-started run's spans")
    flow = next(s for s in spans if s.name == "flow doubled")
    assert flow.service == "baton-flow-run"
    assert {s.parent_id for s in spans if s.name.startswith("task ")} == {flow.span_id}
    completed = next(s for s in spans if s.name == "transition Completed")
    assert completed.service == "baton-server" and completed.attributes["baton.state.to"] == "COMPLETED"
    request = next(s for s in spans if s.span_id == completed.parent_id)  # the API's span of the call
    assert request.parent_id == flow.span_id
