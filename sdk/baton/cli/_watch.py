"""Follow one flow run in the terminal: its states and its logs, in time order, until it ends.

Logs come from the server-sent event stream (read on a thread); states are polled. Engines
ship logs in batches, so a log line often arrives after a later state: a state is held until
a log at least as recent has been printed, or for HOLD_SECONDS, whichever comes first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING
from uuid import UUID

import typer
from rich.text import Text

from . import _api

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from baton_schemas.logs import LogRecord
    from baton_schemas.runs import FlowRun
    from baton_schemas.states import State

    from .._transport.http import SyncBatonClient

# How often the run's state is read: from POLL_FIRST seconds, times 1.5, up to POLL_MAX.
POLL_FIRST, POLL_MAX = 0.2, 1.0
# How long a state waits for the log lines written before it.
HOLD_SECONDS = 2.0
# After the run ended, how long its log stream may take to deliver its last lines.
DRAIN_SECONDS = 5.0


_LEVEL_STYLES = {"DEBUG": "grey50", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def last_line(message: str | None) -> str:
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def when_ms(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


class LogPrinter:
    """Prints log records as the engine's console does, naming the task run of each."""

    def __init__(self, client: SyncBatonClient, run: FlowRun) -> None:
        self.client = client
        self.run = run
        self.console = _api.console()
        self.task_names: dict[UUID, str] = {}

    def label(self, record: LogRecord) -> str:
        task_run_id = record.task_run_id
        if task_run_id is None:
            return f"Flow run {self.run.name!r}"
        if task_run_id not in self.task_names:  # a task run we have not seen yet: ask again
            self.task_names.update((t.id, t.name) for t in _api.all_task_runs(self.client, self.run.id))
            self.task_names.setdefault(task_run_id, str(task_run_id))
        return f"Task run {self.task_names[task_run_id]!r}"

    def print(self, record: LogRecord) -> None:
        level = logging.getLevelName(record.level)
        line = Text(f"{when_ms(record.timestamp)} | ")
        line.append(f"{level:<7}", style=_LEVEL_STYLES.get(level, ""))
        line.append(f" | {self.label(record)} - {record.message}")
        self.console.print(line, soft_wrap=True)


class Timeline:
    """Prints states and log records in time order (see the module's docstring)."""

    def __init__(self, client: SyncBatonClient, flow_run: FlowRun) -> None:
        self.out = _api.console()
        self.flow_run = flow_run
        self.printer = LogPrinter(client, flow_run)
        self.seen: set[object] = set()
        self.held: list[tuple[float, State]] = []  # (when it was read, state)
        self.latest_log: datetime | None = None

    def add(self, states: list[State], records: list[LogRecord]) -> None:
        """Print the new log records with, before each, the states older than it; states more
        recent than every log so far are held. Read `states` after `records` arrived, so that
        they hold every transition those records follow."""
        now = time.monotonic()
        for state in states:
            if state.id not in self.seen:
                self.seen.add(state.id)
                self.held.append((now, state))
        for record in sorted(records, key=lambda r: r.timestamp):
            self._release_until(record.timestamp)
            self.printer.print(record)
            if self.latest_log is None or record.timestamp > self.latest_log:
                self.latest_log = record.timestamp
        if self.latest_log is not None:
            self._release_until(self.latest_log)

    def tick(self, *, everything: bool = False) -> None:
        """Print the states held long enough (all of them if `everything`)."""
        cutoff = time.monotonic() - HOLD_SECONDS
        self._release(lambda _state, at: everything or at <= cutoff)

    def _release_until(self, moment: datetime) -> None:
        self._release(lambda state, _at: state.timestamp <= moment)

    def _release(self, due: Callable[[State, float], bool]) -> None:
        ready = [(at, state) for at, state in self.held if due(state, at)]
        if not ready:
            return
        self.held = [pair for pair in self.held if pair not in ready]
        for _, state in sorted(ready, key=lambda pair: pair[1].timestamp):
            self.out.print(self._state_line(state), soft_wrap=True)

    def _state_line(self, state: State) -> Text:
        moment = state.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3]
        line = Text.assemble(
            f"{moment} | STATE   | Flow run {self.flow_run.name!r} is ", _api.state_text(state)
        )
        if state.message:
            line.append(f": {last_line(state.message)}")
        return line


def watch(client: SyncBatonClient, flow_run: FlowRun) -> FlowRun:
    """Print the run's states and logs until it is terminal; return it as it ended."""
    timeline = Timeline(client, flow_run)
    records: queue.Queue[LogRecord | None] = queue.Queue()

    def follow_logs() -> None:
        try:
            for record in client.stream_logs(flow_run.id):
                records.put(record)
        except Exception as exc:  # the states are still followed; say why the logs stopped
            timeline.out.print(Text(f"(log stream stopped: {exc})", style="grey50"), soft_wrap=True)
        finally:
            records.put(None)

    def take(wait: float) -> tuple[list[LogRecord], bool]:
        """The records that arrive within `wait` seconds, and whether the stream ended."""
        taken: list[LogRecord] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0 or not records.empty():
            try:
                record = records.get(timeout=max(left, 0))
            except queue.Empty:
                break
            if record is None:
                return taken, True
            taken.append(record)
        return taken, False

    threading.Thread(target=follow_logs, name="baton-watch-logs", daemon=True).start()
    delay, stream_ended, ended = POLL_FIRST, False, False
    try:
        while True:
            if stream_ended:
                logs: list[LogRecord] = []
                if not ended:
                    time.sleep(delay)
            else:
                logs, stream_ended = take(DRAIN_SECONDS if ended else delay)
            flow_run = client.read_flow_run(flow_run.id)
            timeline.add(client.read_flow_run_states(flow_run.id), logs)
            if ended and (stream_ended or not logs):
                timeline.tick(everything=True)
                return flow_run
            timeline.tick(everything=stream_ended)
            ended = flow_run.state.is_terminal  # then one more round for the last logs
            delay = min(delay * 1.5, POLL_MAX)
    except KeyboardInterrupt:
        _api.console(stderr=True).print(
            f"Stopped watching; the run goes on (stop it: baton flow-run cancel {flow_run.id})."
        )
        raise


def report_end(flow_run: FlowRun) -> None:
    """The last lines of `--watch` and `--follow`: the run's final state (its traceback first,
    when its message is one); exit 1 unless it Completed."""
    out = _api.console()
    final = flow_run.state
    if final.message and "\n" in final.message.strip():  # a traceback: the run's own story
        out.print(Text(final.message.rstrip(), style="grey50"), soft_wrap=True)
    line = Text.assemble(f"Flow run {flow_run.name!r} ended ", _api.state_text(final))
    if final.message:
        line.append(f": {last_line(final.message)}")
    out.print(line, soft_wrap=True)
    if final.type.value != "COMPLETED":
        raise typer.Exit(1)
