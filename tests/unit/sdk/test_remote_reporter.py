"""The remote reporter: batching, heartbeats, outages, the bounded buffer, delivery later."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from baton import _runtime, _tracing, flow, get_run_logger, task
from baton._records import TaskRunRecord
from baton._reporting._remote import RemoteReporter, ReporterConfig
from baton._settings import ClientSettings
from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Running

from .fakes import FakeBaton, eventually

FAST = ReporterConfig(
    batch_size=50,
    flush_interval=0.02,
    outage_grace=0.1,
    backoff_initial=0.005,
    backoff_max=0.02,
    heartbeat_interval=0.05,
)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def reporter_logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("baton.reporter")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def remote(fake: FakeBaton, settings: ClientSettings, config: ReporterConfig = FAST) -> RemoteReporter:
    reporter = RemoteReporter(fake.connect, config, name="test")
    _runtime.configure(settings=settings, reporter=reporter)
    return reporter


def _record(flow_run_id: object = None) -> TaskRunRecord:
    return TaskRunRecord(
        id=uuid4(),
        flow_run_id=flow_run_id or uuid4(),  # type: ignore[arg-type]
        name="t-0",
        task_key="t",
        dynamic_key="0",
        tags=[],
        task_inputs={},
    )


def test_a_flow_reports_everything_to_the_server(settings: ClientSettings) -> None:
    fake = FakeBaton()
    reporter = remote(fake, settings)

    @task
    def work(x: int) -> int:
        get_run_logger().info("working on %d", x)
        return x

    @flow(retries=2)
    def pipeline() -> int:
        total = sum(work.map(range(5)).result())
        eventually(lambda: fake.of_type(Heartbeat), what="a heartbeat")
        return total

    assert pipeline() == 10
    assert reporter.flush(5).result(10)
    create = fake.of_type(FlowRunCreate)[0]
    assert create.flow_name == "pipeline" and create.retry_policy.retries == 2
    proposals = [p.state.name for p in fake.of_type(ProposeState)]
    assert proposals == ["Running", "Completed"]
    reports = [r for batch in fake.of_type(TaskRunStates) for r in batch.reports]
    assert len(reports) == 15  # 5 task runs x Pending, Running, Completed
    assert {r.task_run.flow_run_id for r in reports} == {create.id}
    heartbeat = fake.of_type(Heartbeat)[0]
    assert heartbeat.flow_run_ids == [create.id] and heartbeat.lease_seconds == 30.0
    messages = [log.message for batch in fake.of_type(Logs) for log in batch.logs]
    assert "working on 3" in messages
    assert "Finished in state Completed()" in messages


def test_with_traces_off_no_report_carries_a_traceparent(settings: ClientSettings) -> None:
    assert not _tracing.enabled()  # no OTLP endpoint in the test run
    fake = FakeBaton()
    reporter = remote(fake, settings)

    @task
    def work(x: int) -> int:
        get_run_logger().info("working on %d", x)
        return x

    @flow
    def pipeline() -> int:
        return sum(work.map(range(3)).result())

    assert pipeline() == 3
    assert reporter.flush(5).result(10)
    assert fake.of_type(ProposeState) and fake.of_type(TaskRunStates) and fake.of_type(Logs)
    assert len(fake.traceparents) == len(fake.of_type(ProposeState)) + len(fake.of_type(TaskRunStates)) + len(
        fake.of_type(Logs)
    )
    assert set(fake.traceparents) == {None}


def test_with_traces_on_reports_carry_the_flow_runs_span(
    settings: ClientSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proposals are made in the flow run's span, and its task-run states and logs go in
    batches sent in the trace of that span (the tracker's spans of them are its children)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(_tracing, "_tracer", provider.get_tracer("test"))  # this test's only
    fake = FakeBaton()
    reporter = remote(fake, settings)

    @task
    def work(x: int) -> int:
        get_run_logger().info("working on %d", x)
        return x

    @flow
    def pipeline() -> int:
        return sum(work.map(range(3)).result())

    assert pipeline() == 3
    assert reporter.flush(5).result(10)
    (flow_span,) = [s for s in exported.get_finished_spans() if s.name == "flow pipeline"]
    context = flow_span.get_span_context()
    assert context is not None
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert fake.traceparents and set(fake.traceparents) == {expected}
    assert len(fake.traceparents) == len(fake.of_type(ProposeState)) + len(fake.of_type(TaskRunStates)) + len(
        fake.of_type(Logs)
    )
    # the run's last logs (sent after it ended) too; then it is forgotten
    assert "Finished in state Completed()" in [
        log.message for batch in fake.of_type(Logs) for log in batch.logs
    ]
    assert not reporter._spans


def test_the_flow_survives_an_outage_and_everything_is_delivered_later(
    settings: ClientSettings, reporter_logs: Records
) -> None:
    fake = FakeBaton(up=False)
    reporter = remote(fake, settings)

    @task
    def work(x: int) -> int:
        return x * 2

    @flow
    def pipeline() -> int:
        return sum(work(x) for x in range(3))

    assert pipeline() == 6  # ran locally while the server was away
    assert fake.received == []
    assert reporter.outage
    assert any("goes on locally" in r.getMessage() for r in reporter_logs.records)
    fake.set_up(True)
    eventually(lambda: reporter.pending() == 0, what="delivery after the outage")
    kinds = [type(item).__name__ for item in fake.received]
    # the flow run is created before anything about it, proposals keep their order
    assert kinds[:3] == ["FlowRunCreate", "ProposeState", "ProposeState"]
    assert [p.state.name for p in fake.of_type(ProposeState)] == ["Running", "Completed"]
    reports = [r for batch in fake.of_type(TaskRunStates) for r in batch.reports]
    assert len(reports) == 9


def test_the_bounded_buffer_drops_the_oldest_with_one_warning(
    settings: ClientSettings, reporter_logs: Records
) -> None:
    fake = FakeBaton(up=False, hold_connect=True)
    config = ReporterConfig(
        max_buffered=10, batch_size=1000, flush_interval=0.01, backoff_initial=0.005, backoff_max=0.02
    )
    reporter = remote(fake, settings, config)
    run = _record()
    for version in range(1, 26):
        reporter.report_task_run_state(run, Running(), version)
    assert reporter.dropped == 15
    warnings = [r for r in reporter_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "buffer is full" in warnings[0].getMessage()
    fake.set_up(True)
    eventually(lambda: reporter.pending() == 0, what="delivery")
    delivered = [r.version for batch in fake.of_type(TaskRunStates) for r in batch.reports]
    assert delivered == list(range(16, 26))  # the newest ten, in order


def test_close_delivers_what_is_buffered(settings: ClientSettings) -> None:
    fake = FakeBaton()
    reporter = RemoteReporter(fake.connect, ReporterConfig(flush_interval=60), name="test")
    run = _record()
    reporter.report_task_run_state(run, Running(), 1)
    reporter.emit_log(run.flow_run_id, run.id, "baton", 20, "hello", time.time())  # type: ignore[arg-type]
    reporter.close(5)
    assert len(fake.of_type(TaskRunStates)) == 1 and len(fake.of_type(Logs)) == 1
    assert fake.closed


def test_close_is_bounded_when_the_server_stays_away(reporter_logs: Records) -> None:
    fake = FakeBaton(up=False)
    reporter = RemoteReporter(fake.connect, FAST, name="test")
    reporter.report_task_run_state(_record(), Running(), 1)
    closing = threading.Thread(target=reporter.close, args=(0.2,), daemon=True)
    closing.start()
    closing.join(30)  # a deadline for the test, far above the 0.2 s asked for
    assert not closing.is_alive(), "close() did not return while the server stayed away"
    assert any("were spooled to" in r.getMessage() for r in reporter_logs.records)


def test_rpc_after_recovery_is_answered_by_the_server(settings: ClientSettings) -> None:
    fake = FakeBaton()
    reporter = RemoteReporter(fake.connect, FAST, name="test")
    try:
        proposal = ProposeState(flow_run_id=uuid4(), state=Running())
        result = reporter.propose_state(proposal).result(5)
        assert result is not None and result.state is not None and result.state.name == "Running"
        fake.set_up(False)
        assert reporter.propose_state(proposal).result(5) is None  # after the grace period
        fake.set_up(True)
        eventually(lambda: reporter.pending() == 0)
        assert [p.transition_id for p in fake.of_type(ProposeState)] == [
            proposal.transition_id,
            proposal.transition_id,  # same id on redelivery: safe to retry
        ]
    finally:
        reporter.close(1)


def test_refused_credentials_turn_reporting_off_with_one_warning(
    settings: ClientSettings, reporter_logs: Records
) -> None:
    fake = FakeBaton()
    fake.refuse = {"create_flow_run": 401, "propose_state": 401, "send": 401}
    reporter = remote(fake, settings)

    @task
    def work() -> int:
        return 1

    @flow
    def pipeline() -> int:
        return work() + work()

    assert pipeline() == 2
    assert pipeline() == 2
    assert reporter.disabled and reporter.pending() == 0
    warnings = [r for r in reporter_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "credentials" in warnings[0].getMessage()


def test_a_run_the_server_refused_to_create_is_not_proposed(settings: ClientSettings) -> None:
    fake = FakeBaton()
    fake.refuse = {"create_flow_run": 422}
    reporter = remote(fake, settings)

    @flow
    def pipeline() -> int:
        return 1

    assert pipeline() == 1
    assert reporter.flush(5).result(10)
    assert fake.of_type(ProposeState) == []


def test_settings_choose_the_reporter(baton_home: object) -> None:
    from baton._reporting import LocalReporter, make_reporter

    local = make_reporter(ClientSettings())
    assert isinstance(local, LocalReporter)
    http = make_reporter(ClientSettings(api_url="http://127.0.0.1:9/api"))
    amqp = make_reporter(ClientSettings(api_url="http://x/api", broker_url="amqp://127.0.0.1:9/"))
    try:
        assert isinstance(http, RemoteReporter) and isinstance(amqp, RemoteReporter)
        assert "http" in http._thread._name and "amqp" in amqp._thread._name
    finally:
        http.close(0)
        amqp.close(0)


def test_task_states_reach_the_server_before_the_flow_run_ends(settings: ClientSettings) -> None:
    fake = FakeBaton()
    remote(fake, settings, ReporterConfig(flush_interval=60, heartbeat_interval=60))

    @task
    def work() -> None:
        pass

    @flow
    def pipeline() -> None:
        work()

    pipeline()
    kinds = [type(item).__name__ for item in fake.received]
    final = max(i for i, item in enumerate(fake.received) if isinstance(item, ProposeState))
    assert "TaskRunStates" in kinds[:final]
    assert fake.received[final].state.name == "Completed"
