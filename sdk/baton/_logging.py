"""Run logging: the console, `get_run_logger()`, `log_prints`, and shipping records to a reporter.

Every run logger record carries `baton_flow_run_id`, `baton_task_run_id` and `baton_label`
("Flow run 'x'" / "Task run 'y'") as extras. The console handler prints them one per line;
the shipping handler (installed only when a reporter ships logs) hands them to the reporter,
which batches them on its own thread, so logging never waits on the network.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from ._context import FlowRunContext, TaskRunContext, flow_run_ctx, task_run_ctx
from ._exceptions import MissingContextError
from ._log_format import TextFormatter, formatter, log_format

if TYPE_CHECKING:
    from baton_schemas.states import State

    from ._protocols import Reporter

ROOT = "baton"
FLOW_RUNS = "baton.flow_runs"
TASK_RUNS = "baton.task_runs"

flow_run_logger = logging.getLogger(FLOW_RUNS)
task_run_logger = logging.getLogger(TASK_RUNS)

_setup_lock = threading.Lock()
_console_handler: logging.Handler | None = None


class ConsoleFormatter(TextFormatter):
    """The human format of every Baton process (`_log_format`), a run's label as who logged."""


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test captures, redirections), unless
    given a stream of its own with `setStream`."""

    def __init__(self) -> None:
        self._own_stream: Any = None
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return self._own_stream or sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._own_stream = None if value is sys.stderr else value


def _console_filter(record: logging.LogRecord) -> bool:
    return getattr(record, "baton_console", True)


def setup_console(level: str | int = "INFO") -> None:
    """Print Baton's records to stderr, unless the application configured the `baton` logger."""
    global _console_handler
    with _setup_lock:
        root = logging.getLogger(ROOT)
        if _console_handler is None and not root.handlers:
            handler = ConsoleHandler()
            handler.setFormatter(ConsoleFormatter() if log_format() == "text" else formatter("flow-run"))
            handler.addFilter(_console_filter)
            root.addHandler(handler)
            root.propagate = False
            _console_handler = handler
        if _console_handler is not None:
            root.setLevel(level.upper() if isinstance(level, str) else level)


class ShippingHandler(logging.Handler):
    """Hands run records to a reporter (fire and forget)."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.DEBUG)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "baton_flow_run_id", None)
        if flow_run_id is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            self.reporter.emit_log(
                flow_run_id,
                getattr(record, "baton_task_run_id", None),
                record.name,
                record.levelno,
                message,
                record.created,
            )
        except Exception:
            self.handleError(record)


def install_shipping(reporter: Reporter) -> ShippingHandler:
    handler = ShippingHandler(reporter)
    logging.getLogger(ROOT).addHandler(handler)
    return handler


def uninstall_shipping(handler: logging.Handler) -> None:
    logging.getLogger(ROOT).removeHandler(handler)


def run_extra(ctx: FlowRunContext | TaskRunContext) -> dict[str, Any]:
    if isinstance(ctx, TaskRunContext):
        return {
            "baton_label": f"Task run {ctx.task_run.name!r}",
            "baton_flow_run_id": ctx.task_run.flow_run_id,
            "baton_task_run_id": ctx.task_run.id,
        }
    return {
        "baton_label": f"Flow run {ctx.flow_run.name!r}",
        "baton_flow_run_id": ctx.flow_run.id,
        "baton_task_run_id": None,
    }


def get_run_logger() -> logging.LoggerAdapter[logging.Logger]:
    """A logger for the current task run (inside a task) or flow run; its records are the run's
    logs: printed to the console and sent to the server when one is configured."""
    ctx: FlowRunContext | TaskRunContext | None = task_run_ctx.get() or flow_run_ctx.get()
    if ctx is None:
        raise MissingContextError("get_run_logger() needs a flow or task run in progress.")
    logger = task_run_logger if isinstance(ctx, TaskRunContext) else flow_run_logger
    return logging.LoggerAdapter(logger, run_extra(ctx))


def format_state(state: State) -> str:
    """`Completed()`, `Failed('ValueError: boom')`: the last line of the message only."""
    if not state.message:
        return f"{state.name}()"
    lines = [line for line in state.message.strip().splitlines() if line.strip()]
    return f"{state.name}({lines[-1].strip() if lines else ''!r})"


# --- log_prints ---------------------------------------------------------------------------

_original_print = builtins.print
_print_patched = False


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)
    if file is not None and file is not sys.stdout:
        return
    ctx: FlowRunContext | TaskRunContext | None = task_run_ctx.get() or flow_run_ctx.get()
    if ctx is None or not ctx.log_prints:
        return
    logger = task_run_logger if isinstance(ctx, TaskRunContext) else flow_run_logger
    extra = run_extra(ctx)
    extra["baton_console"] = False  # the console already shows the print itself
    logger.info("%s", (" " if sep is None else sep).join(map(str, args)), extra=extra)


def patch_print() -> None:
    """Route `print()` of runs with `log_prints=True` into their logs too (idempotent)."""
    global _print_patched
    with _setup_lock:
        if not _print_patched:
            builtins.print = _print
            _print_patched = True


def unpatch_print() -> None:
    global _print_patched
    with _setup_lock:
        if _print_patched:
            builtins.print = _original_print
            _print_patched = False
