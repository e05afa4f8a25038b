"""Traces on, every transition the server applies is a span: a child of its proposer's span,
with the run, the states it went from and to, and the verdict. Spans go to an in-memory
exporter (this test's own tracer; the process's traces stay off for the other tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from baton import _tracing
from baton_schemas.envelopes import Claim, ProposeState
from baton_schemas.states import Completed, Pending, Running, StateType, Verdict
from baton_server.context import ServerContext
from baton_server.tracker.reaper import Reaper
from baton_server.tracker.transitions import propose_flow_run_state

from ..support.runs import new_run, propose
from ..support.waiting import eventually

TRACE_ID, PROPOSER = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PROPOSER}-01"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(_tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def _ids(span: ReadableSpan) -> tuple[str, str | None]:
    parent = span.parent
    return f"{span.context.trace_id:032x}", None if parent is None else f"{parent.span_id:016x}"


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_each_transition_is_a_child_of_its_proposers_span(
    ctx: ServerContext, exported: InMemorySpanExporter
) -> None:
    run = await new_run(ctx)
    proposals = [
        ProposeState(flow_run_id=run.id, state=Pending(), claim=Claim(worker_id="w")),
        ProposeState(flow_run_id=run.id, state=Running()),
        ProposeState(flow_run_id=run.id, state=Completed()),
        ProposeState(flow_run_id=run.id, state=Running()),  # out of a terminal state: refused
    ]
    proposals.append(proposals[2].model_copy())  # a resend of the Completed: answered again
    async with ctx.pool.acquire() as conn:
        verdicts = [
            (await propose_flow_run_state(conn, p, traceparent=TRACEPARENT)).result.verdict for p in proposals
        ]
    assert verdicts == [Verdict.ACCEPT, Verdict.ACCEPT, Verdict.ACCEPT, Verdict.REJECT, Verdict.ACCEPT]
    spans = [s for s in exported.get_finished_spans() if s.name.startswith("transition ")]
    assert [s.name for s in spans] == [
        "transition Pending",
        "transition Running",
        "transition Completed",
        "transition Running",
        "transition Completed",
    ]
    assert {_ids(s) for s in spans} == {(TRACE_ID, PROPOSER)}
    assert {_attrs(s)["baton.flow_run.id"] for s in spans} == {str(run.id)}
    seen = [
        (a["baton.state.from"], a["baton.state.to"], a["baton.transition.verdict"], a["baton.state.result"])
        for a in map(_attrs, spans)
    ]
    assert seen == [
        ("SCHEDULED", "PENDING", "ACCEPT", "PENDING"),
        ("PENDING", "RUNNING", "ACCEPT", "RUNNING"),
        ("RUNNING", "COMPLETED", "ACCEPT", "COMPLETED"),
        ("COMPLETED", "RUNNING", "REJECT", "COMPLETED"),
        ("", "COMPLETED", "ACCEPT", "COMPLETED"),
    ]
    assert _attrs(spans[-1])["baton.transition.replayed"] is True
    assert "baton.transition.replayed" not in _attrs(spans[0])


async def test_the_reapers_crash_joins_the_trace_of_the_run(
    ctx: ServerContext, exported: InMemorySpanExporter
) -> None:
    with _tracing.span("create the run") as creator:  # the run remembers its creator's span
        run = await new_run(ctx)
    await propose(ctx, run.id, Pending(), claim=Claim(worker_id="w-silent", lease_seconds=0.1))
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "UPDATE flow_runs SET lease_expires_at = now() - interval '1 hour' WHERE id = $1", run.id
        )
    reaper = Reaper(ctx.pool, ctx.outbox, default_lease_seconds=0.1)

    def crash_spans() -> list[Any]:
        return [
            s
            for s in exported.get_finished_spans()
            if s.name == "transition Crashed"
            and _attrs(s)["baton.flow_run.id"] == str(run.id)
            and _attrs(s).get("baton.transition.verdict") == "ACCEPT"  # a second reaper's is refused
        ]

    async def reaped() -> list[Any]:
        # this reaper, or the session tracker's (it reaps the test database too, and may come
        # first): either way the Crashed is a span of the run's trace, finished a little after
        # the state is stored, so wait for the span itself
        await reaper.reap()
        return crash_spans()

    (crash,) = await eventually(reaped, timeout=10, interval=0.05, what="the reaper's transition span")
    async with ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT state_type FROM flow_runs WHERE id = $1", run.id) == "CRASHED"
    context = creator.get_span_context()
    assert _ids(crash) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert _attrs(crash)["baton.state.from"] == StateType.PENDING.value
    assert _attrs(crash)["baton.transition.verdict"] == Verdict.ACCEPT.value
