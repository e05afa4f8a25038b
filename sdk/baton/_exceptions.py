"""Exceptions the SDK raises to its users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BatonError(Exception):
    """Base class of every error Baton raises on purpose."""


class ParameterValidationError(BatonError, ValueError):
    """A flow was called with parameters that don't match its signature; no run was created."""

    def __init__(self, flow_name: str, errors: Sequence[dict[str, Any]]) -> None:
        self.flow_name = flow_name
        self.errors = list(errors)
        self.fields = [".".join(str(p) for p in err.get("loc", ())) or "?" for err in self.errors]
        details = "; ".join(
            f"{field}: {err.get('msg', 'invalid')}"
            for field, err in zip(self.fields, self.errors, strict=True)
        )
        super().__init__(f"Invalid parameters for flow {flow_name!r}: {details}")


class MissingContextError(BatonError, RuntimeError):
    """Something that needs a running flow or task was used outside of one."""


class RunTimeoutError(BatonError, TimeoutError):
    """A flow or task run took longer than its `timeout_seconds`."""


class UpstreamTaskError(BatonError):
    """A task could not start because a task it depends on did not complete."""


class FailedRun(BatonError):
    """Raised by `State.result()` for a failed run that stored no exception of its own."""


class CrashedRun(BatonError):
    """Raised by `State.result()` for a crashed run that stored no exception of its own."""


class CancelledRun(BatonError):
    """Raised by `State.result()` for a cancelled run."""


class Abort(BatonError):
    """The orchestrator told the engine to stop this run (claimed elsewhere, cancelled, gone)."""


class FlowPauseTimeout(BatonError, TimeoutError):
    """The run was paused and not resumed before its timeout: the run has Failed."""


class Suspend(BaseException):
    """Raised through the flow once its run is Suspended (`suspend_flow_run`): the engine ends
    the run's process there, and a worker starts it again on resume. Not an Exception, so that
    a flow's `except Exception` does not swallow it."""

    def __init__(self, state: Any) -> None:
        super().__init__(getattr(state, "message", None) or "suspended")
        self.state = state


class RunInterrupted(BaseException):
    """Injected into a thread whose run timed out, to stop it at its next Python instruction."""


class ConcurrencySlotAcquisitionError(BatonError):
    """Slots of a concurrency limit could not be taken: the request can never be granted as
    asked (more slots than the limit has; `rate_limit` on a limit without a slot decay)."""


class ConcurrencyLimitNotFound(ConcurrencySlotAcquisitionError, LookupError):
    """`concurrency(..., strict=True)` or `rate_limit(..., strict=True)` named a limit that does
    not exist."""


class ConcurrencySlotTimeout(ConcurrencySlotAcquisitionError, TimeoutError):
    """No slots came free within `timeout_seconds`."""
