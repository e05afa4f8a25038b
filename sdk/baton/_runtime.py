"""The process-wide runtime: settings, the reporter and the result store, made on first use.

Tests and embedders replace it with `configure(...)` and drop it with `reset()`; nothing is
created at import time. At interpreter exit the reporter gets `close_timeout` seconds to
deliver what it still holds.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import _tracing
from ._logging import install_shipping, setup_console, uninstall_shipping
from ._reporting import make_reporter
from ._results import LocalResultStore, use_default_store
from ._settings import ClientSettings

if TYPE_CHECKING:
    from ._protocols import Reporter
    from ._results import ResultStore


@dataclass(slots=True, eq=False)
class Runtime:
    settings: ClientSettings
    reporter: Reporter
    result_store: ResultStore
    _shipping: logging.Handler | None = None

    def close(self, timeout: float | None = None) -> None:
        if self._shipping is not None:
            uninstall_shipping(self._shipping)
            self._shipping = None
        self.reporter.close(self.settings.close_timeout if timeout is None else timeout)


_lock = threading.RLock()
_current: Runtime | None = None
_atexit_registered = False


def get_runtime() -> Runtime:
    runtime = _current
    if runtime is None:
        runtime = configure()
    return runtime


def configure(
    *,
    settings: ClientSettings | None = None,
    reporter: Reporter | None = None,
    result_store: ResultStore | None = None,
) -> Runtime:
    """Replace the runtime (closing the previous one). Unset parts come from the settings."""
    global _current, _atexit_registered
    with _lock:
        settings = settings or ClientSettings.load()
        runtime = Runtime(
            settings=settings,
            reporter=reporter or make_reporter(settings),
            result_store=result_store or LocalResultStore(settings.resolved_results_dir()),
        )
        setup_console(settings.log_level)
        # a flow run started here (`python my_flow.py`) is a trace too when an OTLP endpoint is
        # set, as one a worker starts (its process set traces up already: this returns at once)
        _tracing.setup("flow-run")
        if runtime.reporter.ships_logs:
            runtime._shipping = install_shipping(runtime.reporter)
        previous, _current = _current, runtime
        use_default_store(runtime.result_store)
        if not _atexit_registered:
            atexit.register(_close_at_exit)
            _atexit_registered = True
    if previous is not None:
        previous.close()
    return runtime


def reset(timeout: float | None = None) -> None:
    """Close the current runtime; the next run builds a new one from the settings."""
    global _current
    with _lock:
        previous, _current = _current, None
        use_default_store(None)
    if previous is not None:
        previous.close(timeout)


def _close_at_exit() -> None:
    reset()
