"""One log format for every Baton process: human-readable by default, JSON lines with
`BATON_LOG_FORMAT=json`.

The server, the worker and a run's process all format their records here, and so do the
libraries they use (uvicorn, aio-pika, httpx): their records propagate to the root logger,
whose one handler is `install`'s.

    12:04:05.123 | INFO    | baton.worker - Claimed flow run 'brave-fox' (6f1c...) of 'etl'
    {"time": "2026-12-04T12:04:05.123Z", "level": "INFO", "logger": "baton.worker",
     "message": "Claimed flow run ...", "process": "worker", "pid": 4242,
     "flow_run_id": "6f1c..."}

(one line each). A record's run and task-run ids, where known, are fields of their own
(`flow_run_id`, `task_run_id`), as are the other `extra=` values it was logged with, and
`trace_id` / `span_id` when a trace is being recorded.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

FORMAT_ENV = "BATON_LOG_FORMAT"
FORMATS = ("text", "json")

# what every LogRecord has: not an `extra`
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# extras that are not data: uvicorn's coloured copy of the message, the console's own flags
_SKIPPED = frozenset({"color_message", "baton_label", "baton_console"})
QUIET = ("httpx", "httpcore")
_RENAMED = {"baton_flow_run_id": "flow_run_id", "baton_task_run_id": "task_run_id"}

# set by the tracing module when traces are on: the current span's (trace id, span id) or None
trace_ids: Callable[[], tuple[str, str] | None] | None = None


def log_format(value: str | None = None) -> str:
    """`text` or `json`: `value`, else $BATON_LOG_FORMAT, else text. ValueError if unknown."""
    chosen = (value if value is not None else os.environ.get(FORMAT_ENV, "")).strip().lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"{FORMAT_ENV} must be 'text' or 'json', not {chosen!r}")
    return chosen


class TextFormatter(logging.Formatter):
    """`HH:MM:SS.mmm | LEVEL   | who - message`; who is a run's label ("Flow run 'x'") or the
    logger's name."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(baton_label)s - %(message)s",
            datefmt="%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "baton_label"):
            record.baton_label = record.name
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key in _SKIPPED or value is None:
                continue
            out[_RENAMED.get(key, key)] = value
        if trace_ids is not None and (ids := trace_ids()) is not None:
            out["trace_id"], out["span_id"] = ids
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def formatter(process: str, fmt: str | None = None) -> logging.Formatter:
    return JsonFormatter(process) if log_format(fmt) == "json" else TextFormatter()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when it writes (test captures, redirections)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def install(process: str, level: str | int = "INFO", fmt: str | None = None) -> logging.Handler:
    """Make the root logger's one handler print in the process's format (replacing the one a
    previous call installed); ValueError for an unknown format."""
    chosen = formatter(process, fmt)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(chosen)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    if root.getEffectiveLevel() > logging.DEBUG:
        for name in QUIET:  # a line per HTTP request: only when debugging
            logging.getLogger(name).setLevel(logging.WARNING)
    return handler
