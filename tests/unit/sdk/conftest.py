"""SDK fixtures: every test runs against a fresh local runtime, results in a temp folder, and an
in-memory `RecordingReporter` (a test double of the `Reporter` protocol) that keeps what the
engine reports, so tests can assert the states, the dependency graph and the logs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from baton import _runtime
from baton._records import TaskRunRecord
from baton._settings import ClientSettings
from baton_schemas.envelopes import ProposeState
from baton_schemas.runs import FlowRun, FlowRunCreate, TaskRunInfo
from baton_schemas.states import State, TransitionResult

Decide = Callable[[ProposeState], TransitionResult | None]


@dataclass
class TaskReport:
    info: TaskRunInfo
    state: State
    version: int


@dataclass
class LogEntry:
    flow_run_id: UUID
    task_run_id: UUID | None
    name: str
    level: int
    message: str


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


class RecordingReporter:
    """Keeps every report in memory. `decide` plays the orchestrator for flow-run proposals
    (return None to let the engine decide locally, as with no server)."""

    ships_logs = True

    def __init__(self, decide: Decide | None = None) -> None:
        self.decide = decide
        self.created: list[FlowRunCreate] = []
        self.proposals: list[ProposeState] = []
        self.task_reports: list[TaskReport] = []
        self.logs: list[LogEntry] = []
        self.tracked: set[UUID] = set()
        self.cancelling: set[UUID] = set()  # runs the "server" is cancelling
        self.closed = False
        self.flushes = 0
        self._lock = threading.Lock()

    # the protocol
    def create_flow_run(self, run: FlowRunCreate) -> Future[FlowRun | None]:
        with self._lock:
            self.created.append(run)
        return _done(None)

    def propose_state(self, proposal: ProposeState) -> Future[TransitionResult | None]:
        with self._lock:
            self.proposals.append(proposal)
        return _done(self.decide(proposal) if self.decide else None)

    def report_task_run_state(self, task_run: TaskRunRecord, state: State, version: int) -> None:
        report = TaskReport(task_run.to_info(), state, version)
        with self._lock:
            self.task_reports.append(report)

    def emit_log(
        self,
        flow_run_id: UUID,
        task_run_id: UUID | None,
        name: str,
        level: int,
        message: str,
        created: float,
    ) -> None:
        with self._lock:
            self.logs.append(LogEntry(flow_run_id, task_run_id, name, level, message))

    def track_flow_run(self, flow_run_id: UUID) -> None:
        self.tracked.add(flow_run_id)

    def untrack_flow_run(self, flow_run_id: UUID) -> None:
        self.tracked.discard(flow_run_id)

    def cancel_requested(self, flow_run_id: UUID) -> bool:
        return flow_run_id in self.cancelling

    def flush(self, timeout: float) -> Future[bool]:
        self.flushes += 1
        return _done(True)

    def close(self, timeout: float) -> None:
        self.closed = True

    # what tests read
    def flow_run(self, name: str | None = None) -> FlowRunCreate:
        runs = [run for run in self.created if name is None or run.flow_name == name]
        assert len(runs) == 1, f"expected one flow run named {name}, got {len(runs)}"
        return runs[0]

    def flow_states(self, flow_run_id: UUID | None) -> list[str]:
        return [p.state.name for p in self.proposals if p.flow_run_id == flow_run_id]

    def task_runs(self, flow_run_id: UUID | None = None) -> dict[UUID, TaskRunInfo]:
        """Task runs as the tracker would hold them: the last report of each wins."""
        runs: dict[UUID, TaskRunInfo] = {}
        for report in sorted(self.task_reports, key=lambda r: r.version):
            if flow_run_id is None or report.info.flow_run_id == flow_run_id:
                runs[report.info.id] = report.info
        return runs

    def task_states(self, task_run_id: UUID) -> list[str]:
        reports = [r for r in self.task_reports if r.info.id == task_run_id]
        return [r.state.name for r in sorted(reports, key=lambda r: r.version)]

    def task_run_named(self, name: str) -> TaskRunInfo:
        found = [info for info in self.task_runs().values() if info.name == name]
        assert len(found) == 1, f"expected one task run named {name}, got {found}"
        return found[0]


@pytest.fixture
def baton_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "baton-home"
    monkeypatch.setenv("BATON_HOME", str(home))
    for name in ("BATON_API_URL", "BATON_BROKER_URL", "BATON_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def settings(baton_home: Path) -> ClientSettings:
    return ClientSettings(results_dir=baton_home / "results")


@pytest.fixture(autouse=True)
def reporter(settings: ClientSettings) -> Iterator[RecordingReporter]:
    recording = RecordingReporter()
    _runtime.configure(settings=settings, reporter=recording)
    try:
        yield recording
    finally:
        _runtime.reset()


@pytest.fixture
def results_dir(settings: ClientSettings) -> Path:
    return settings.resolved_results_dir()
