"""The flow run's process: pull steps, the entrypoint, then the flow, under the worker's claim.

Runs in a fresh interpreter (`python -m baton._worker`) or in a process forked from the
worker's pre-started one. It reports (states, task runs, logs) through its worker, which
forwards to the tracker (`_relay`); the worker owns the run's lease (its heartbeats) and echoes
the process's stdout and stderr on its own console (never as the run's logs: `print()` is a
run's log only with `log_prints=True`, as in a local run). Baton's own console output goes to
a descriptor of its own (`BATON_CONSOLE_FD`).

The exit code tells the worker what is left to do:
- `EXIT_REPORTED` (0): the server has the run's outcome (a final state, a retry it
  dispatches again, or a suspension: it is dispatched again once resumed);
- `EXIT_ABORTED` (3): the server said the run is no longer ours; nothing to report;
- anything else: the worker ends the run Crashed, with the code in the message.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

from baton_schemas import utcnow
from baton_schemas.envelopes import FlowRunDispatch, ProposeState
from baton_schemas.runs import FlowRun
from baton_schemas.states import Failed, Pending, State

from .. import _logging, _tracing
from .._definitions import FlowDefinition
from .._entrypoints import EntrypointError, load_flow
from .._exceptions import Abort, ParameterValidationError
from .._flow_engine import run_existing_flow_run
from .._hooks import run_hooks
from .._log_format import install
from .._protocols import Reporter
from .._reporting._remote import RemoteReporter, ReporterConfig
from .._runtime import Runtime, configure
from .._settings import CLAIM_ID_ENV, ClientSettings
from ._job import (
    CONSOLE_FD_ENV,
    EXIT_ABORTED,
    EXIT_REPORTED,
    EXIT_UNREPORTED,
    FLOW_RUN_ID_ENV,
    JOB_FD_ENV,
    RunJob,
    read_job_fd,
)
from ._pull_steps import PullStepError, run_pull_steps
from ._relay import RELAY_FD_ENV, RelayTransport

_PR_SET_PDEATHSIG = 1
SIGTERM_FLUSH_SECONDS = 1.0
MAX_SLOT_WAIT_SECONDS = 60.0  # a run is never held longer than this for its slot

logger = logging.getLogger("baton.flow_runs")


def die_with_parent(expected_parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux); exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(EXIT_UNREPORTED)


def finish(code: int) -> None:
    """Exit without running the interpreter's teardown (a forked process shares its parent's)."""
    _tracing.shutdown()  # its spans, exported before it goes (atexit does not run)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


class _RunLog:
    """Records of this run before its engine exists: console, and shipped as the run's logs."""

    def __init__(self, dispatch: FlowRunDispatch) -> None:
        self.extra = {
            "baton_label": f"Flow run {dispatch.flow_run_name!r}",
            "baton_flow_run_id": dispatch.flow_run_id,
            "baton_task_run_id": None,
        }

    def info(self, message: str) -> None:
        logger.info(message, extra=self.extra)

    def error(self, message: str) -> None:
        logger.error(message, extra=self.extra)


def _configure_runtime(console_fd: int | None, relay_fd: int | None) -> Runtime:
    # The process heartbeats for its own run as well as the worker does: a worker that is
    # paused or cut off does not make a run that is still going look dead (the relay falls back
    # to the broker for heartbeats when the worker does not answer).
    settings = ClientSettings.load()
    reporter: Reporter | None = None
    if relay_fd is not None:  # through the worker: no broker connection of our own
        timeout = settings.request_timeout + 5

        async def connect() -> RelayTransport:
            return await RelayTransport.open(relay_fd, timeout, settings.broker_url, settings.lease_seconds)

        reporter = RemoteReporter(connect, ReporterConfig.from_settings(settings), name="relay")
    runtime = configure(settings=settings, reporter=reporter)
    install("flow-run", settings.log_level)  # its libraries' records, in the worker's format
    _tracing.setup("flow-run")  # after the fork: the exporter's thread is this process's own
    handler = _logging._console_handler
    if console_fd is not None and handler is not None:
        assert isinstance(handler, logging.StreamHandler)
        console = os.fdopen(console_fd, "w", buffering=1, errors="replace")
        handler.setStream(console)
    return runtime


def _install_sigterm(runtime: Runtime) -> None:
    """Cancelled or stopped by the worker: deliver what is buffered (briefly), then go."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        try:
            runtime.reporter.flush(SIGTERM_FLUSH_SECONDS).result(SIGTERM_FLUSH_SECONDS + 0.5)
        except Exception:
            pass
        finish(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _delivered(runtime: Runtime) -> bool:
    pending = getattr(runtime.reporter, "pending", None)
    return pending is None or pending() == 0


def _end(runtime: Runtime, job: RunJob, dispatch: FlowRunDispatch, state: State, log: _RunLog) -> int:
    """The run cannot start: propose `state` (Failed, with the reason) under the claim."""
    log.error(state.message or "the flow run could not start")
    proposal = ProposeState(flow_run_id=dispatch.flow_run_id, state=state, claim_id=job.claim_id)
    try:
        result = runtime.reporter.propose_state(proposal).result()
    except Exception:
        result = None
    runtime.close()
    return EXIT_REPORTED if result is not None and _delivered(runtime) else EXIT_UNREPORTED


def _flow_run(dispatch: FlowRunDispatch, job: RunJob) -> FlowRun:
    now = utcnow()
    return FlowRun(
        id=dispatch.flow_run_id,
        name=dispatch.flow_run_name,
        flow_id=UUID(int=0),  # not in the dispatch, and the engine does not need it
        flow_name=dispatch.flow_name,
        deployment_id=dispatch.deployment_id,
        parameters=dispatch.parameters,
        state=Pending(),
        state_version=job.claimed_version,
        run_count=int(getattr(dispatch, "run_count", 0) or 0),
        work_pool_name=dispatch.work_pool_name,
        work_queue_name=dispatch.work_queue_name,
        job_variables=dispatch.job_variables,
        created=now,
        updated=now,
    )


def wait_for_slot(dispatch: FlowRunDispatch) -> None:
    """A run claimed a little before its scheduled time (so that its process is up by then) starts
    at that time, not before."""
    if dispatch.scheduled_time is None:
        return
    delay = (dispatch.scheduled_time - utcnow()).total_seconds()
    if delay > 0:
        time.sleep(min(delay, MAX_SLOT_WAIT_SECONDS))


def _with_deployment_options(
    flow: FlowDefinition[..., Any], dispatch: FlowRunDispatch
) -> FlowDefinition[..., Any]:
    """The flow as its deployment runs it: the deployment's timeout and print capture (the
    flow's own unless baton.yaml set them). Retries are the server's: the run's retry policy."""
    options: dict[str, Any] = {}
    if dispatch.timeout_seconds is not None and dispatch.timeout_seconds != flow.timeout_seconds:
        options["timeout_seconds"] = dispatch.timeout_seconds
    if dispatch.log_prints is not None and dispatch.log_prints != flow.log_prints:
        options["log_prints"] = dispatch.log_prints
    return flow.with_options(**options) if options else flow


def run(job: RunJob, console_fd: int | None = None, relay_fd: int | None = None) -> int:
    """Run the job in this process; returns the exit code (see the module's docstring)."""
    os.environ[CLAIM_ID_ENV] = str(job.claim_id)
    os.environ[FLOW_RUN_ID_ENV] = job.flow_run_id
    dispatch = FlowRunDispatch.model_validate(job.dispatch)
    if dispatch.deployment_id is not None:  # for baton.runtime.deployment
        os.environ["BATON_DEPLOYMENT_ID"] = str(dispatch.deployment_id)
        os.environ["BATON_DEPLOYMENT_NAME"] = dispatch.deployment_name or ""
    runtime = _configure_runtime(console_fd, relay_fd)
    _install_sigterm(runtime)
    connect_soon = getattr(runtime.reporter, "connect_soon", None)
    if connect_soon is not None:
        connect_soon()  # while the pull steps run and the flow loads
    log = _RunLog(dispatch)
    try:
        if dispatch.pull_steps:
            run_pull_steps(dispatch.pull_steps, log.info)
        flow = _with_deployment_options(load_flow(dispatch.entrypoint, Path.cwd()), dispatch)
        log.info(f"Loaded flow {flow.name!r} from {dispatch.entrypoint!r}")
    except (PullStepError, EntrypointError) as exc:
        if job.hooks_state is not None:
            log.error(f"The flow's hooks cannot run: {exc}")
            runtime.close()
            return EXIT_REPORTED
        return _end(runtime, job, dispatch, Failed(message=str(exc)), log)
    if job.hooks_state is not None:  # the worker ended the run: only its hooks are left
        state = State.model_validate(job.hooks_state)
        flow_run = _flow_run(dispatch, job).model_copy(update={"state": state})
        run_hooks(flow, flow_run, state, logger, log.extra)
        runtime.close()
        return EXIT_REPORTED
    wait_for_slot(dispatch)
    try:
        outcome = run_existing_flow_run(flow, _flow_run(dispatch, job), runtime, claim_id=job.claim_id)
        if inspect.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
    except ParameterValidationError as exc:
        return _end(runtime, job, dispatch, Failed(message=str(exc)), log)
    except Abort as exc:
        log.error(f"The server stopped this run: {exc}")
        runtime.close()
        return EXIT_ABORTED
    except BaseException:  # a crash: the engine proposed Crashed if it could; the worker makes sure
        traceback.print_exc()
        runtime.close()
        return EXIT_UNREPORTED
    final: State = outcome
    runtime.close()
    settled = final.is_terminal or final.is_scheduled() or final.is_paused()  # paused: Suspended
    return EXIT_REPORTED if settled and _delivered(runtime) else EXIT_UNREPORTED


def main() -> None:
    """`python -m baton._worker`: run the job the worker passed in `BATON_JOB_FD`."""
    try:
        job_fd = int(os.environ.pop(JOB_FD_ENV))
    except (KeyError, ValueError):
        sys.stderr.write(f"baton: {JOB_FD_ENV} is not set: this command is started by `baton worker`\n")
        finish(2)
        return
    console = os.environ.pop(CONSOLE_FD_ENV, None)
    relay = os.environ.pop(RELAY_FD_ENV, None)
    job = read_job_fd(job_fd)
    finish(run(job, int(console) if console else None, int(relay) if relay else None))
