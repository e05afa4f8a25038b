"""The worker: takes deployment runs from its pool's queues, claims them, runs each in a process.

    worker = Worker(WorkerSettings(pool="etl", limit=4))
    await worker.run(stop_event)      # until stop_event is set, then drains and stops

For each delivery: parse the `FlowRunDispatch`, listen for the run's cancellation, claim it
(Scheduled -> Pending with a `Claim`, RPC to the tracker), and only then settle the message:
ACCEPT starts it; ABORT (a duplicate, a cancelled run, claimed elsewhere), REJECT and WAIT (a
concurrency limit: the server moved the run back to Scheduled and dispatches it again) drop it;
an unreachable server requeues it. While it owns runs the worker heartbeats for them; a run's
process that exits without having reported its outcome makes the run Crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from baton_schemas.envelopes import (
    Claim,
    ControlKind,
    ControlMessage,
    FlowRunDispatch,
    Heartbeat,
    ProposeState,
    WorkerInfo,
)
from baton_schemas.states import Cancelled, Crashed, Failed, Pending, State, TransitionResult, Verdict

from .. import _tracing
from .._amqp import Connection, Delivery
from .._log_format import install
from .._settings import ClientSettings
from .._tracing import TRACEPARENT_ENV
from .._transport import RequestRejected, TransportUnavailable
from .._transport.amqp import AmqpTracker
from ._api import discover_queues, reach_api
from ._control import ControlQueue
from ._forkserver import FORKSERVER_FD_ENV
from ._intake import Intake, QueueSpec, SlotBook
from ._job import EXIT_ABORTED, EXIT_REPORTED, RunJob
from ._metrics import CLAIMS, PROCESS_EXITS, RUN_START_SECONDS, serve_metrics
from ._output import console_streams, crash_message, pump
from ._parking import Parking
from ._process import ForkServerLauncher, RunProcess, SpawnLauncher, run_env
from ._relay import serve_relay
from ._settings import WorkerSettings
from ._templates import ProcessJobConfiguration

logger = logging.getLogger("baton.worker")

OUTPUT_AFTER_EXIT_SECONDS = 2.0  # a run's output pipes may be held open by what it left behind
MAX_SCHEDULE_WAIT_SECONDS = 60.0
# A run dispatched ahead of its slot is claimed this long before it (the tracker takes claims up
# to 0.5 s early), so its process is up when the slot comes; the process waits for the slot
# before the flow starts (`_child.wait_for_slot`).
CLAIM_LEAD_SECONDS = 0.3
OUTPUT_TAIL_LINES = 10  # of stdout and stderr, for the message of a Crashed run


@dataclass(eq=False)
class ActiveRun:
    dispatch: FlowRunDispatch
    claim_id: UUID
    claimed_version: int
    process: RunProcess | None = None
    cancel_reason: str | None = None
    suspended: bool = False  # the server suspended the run: stop its process, report nothing
    shutdown: bool = False
    stopping: asyncio.Task[None] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL_LINES))
    span: Any = None  # the worker's span of the run, from its claim to its end (traces on)

    @property
    def id(self) -> UUID:
        return self.dispatch.flow_run_id

    @property
    def label(self) -> str:
        return f"{self.dispatch.flow_run_name!r} ({self.dispatch.flow_run_id})"


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        client: ClientSettings | None = None,
        *,
        echo_output: bool = True,
    ) -> None:
        self.settings = settings
        self.client = client or ClientSettings.load()
        self.worker_id = str(uuid4())
        self.name = settings.name or f"{socket.gethostname()}-{os.getpid()}"
        self.book = SlotBook(settings.limit)
        self.runs: dict[UUID, ActiveRun] = {}
        self._claims: dict[UUID, str | None] = {}  # runs being claimed -> a cancel that came meanwhile
        self._release_waiters: dict[UUID, asyncio.Future[None]] = {}  # dispatched again meanwhile
        self._echo = echo_output
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._force = asyncio.Event()
        self._changed = asyncio.Event()
        # the AMQP work beside the tracker's, on the tracker's connection (one stack): control
        # messages (a queue of this worker's, bound per run it claims) and parking in baton.dead
        self.control = ControlQueue(self.worker_id, self._on_control)
        self.parking = Parking(settings.pool, self.client.request_timeout)
        self.tracker: AmqpTracker | None = None
        self.intake: Intake | None = None
        self._spawner = SpawnLauncher()
        self._forker: ForkServerLauncher | None = None
        self._base_env = self._child_base_env()
        self.started_at: float | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def _child_base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_WORKER_")}
        env.pop(FORKSERVER_FD_ENV, None)
        for key, value in (
            ("BATON_BROKER_URL", self.client.broker_url),
            ("BATON_API_URL", self.client.api_url),
            ("BATON_API_KEY", self.client.api_key),
        ):
            if value:
                env[key] = value
        # the run's process keeps its run's lease alive too, at the worker's pace and length
        env["BATON_HEARTBEAT_INTERVAL"] = str(self.settings.heartbeat_seconds)
        env["BATON_LEASE_SECONDS"] = str(self.settings.lease_seconds)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def start(self) -> None:
        if _tracing.setup("worker"):
            logger.info("Traces on: exported over OTLP to %s", _tracing.endpoint())
        api = await reach_api(self.client, self.settings) if self.client.api_url else None
        broker_url = self.client.broker_url or (api.broker_url if api is not None else None)
        if not broker_url:
            raise RuntimeError(
                "a worker needs the API (set BATON_API_URL and BATON_API_KEY) or BATON_BROKER_URL"
            )
        self._base_env["BATON_BROKER_URL"] = broker_url  # its runs' engines report the same way
        timeout = self.client.request_timeout
        queues = await discover_queues(self.client, self.settings)
        self.tracker = tracker = await AmqpTracker.connect(
            broker_url, connect_timeout=timeout, rpc_timeout=timeout, name=f"baton-worker {self.name}"
        )
        if api is not None:  # the broker must be the API's installation's, not another Baton's
            await tracker.check_installation(api.installation_id, what=f"the API at {self.client.api_url}")
        await self.control.open(tracker.link.connection)
        tracker.link.on_reconnect(self._on_reconnect)
        if self.settings.prestart > 0:
            self._forker = ForkServerLauncher(self.settings.prestart, self._base_env)
            await self._forker.start()
        await self._heartbeat()
        self._spawn(self._heartbeat_loop(), "heartbeats")
        self.intake = Intake(lambda: tracker.link.connection.channel(), self.book, self._on_delivery)
        await self.intake.set_queues(queues)
        self._spawn(self._refresh_loop(), "queue refresh")
        if self.settings.metrics_port is not None:
            serve_metrics(
                self.settings.metrics_port,
                self.settings.metrics_host,
                self.settings.limit,
                lambda: len(self.runs) + len(self._claims),
            )
        self.started_at = time.time()
        names = ", ".join(q.name.rsplit(".", 1)[-1] for q in queues) or "none yet"
        logger.info(
            "Worker %r (%s) serving pool %r (queues: %s), limit %s",
            self.name,
            self.worker_id,
            self.settings.pool,
            names,
            self.settings.limit or "none",
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then shut down (draining running flows). A stop
        while it is still starting (waiting for the API) ends the wait."""
        starting = asyncio.ensure_future(self.start())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await self.shutdown()
            return
        starting.result()  # why it could not start
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    def force_stop(self) -> None:
        """A second signal: stop running flows now instead of draining."""
        self._force.set()

    async def shutdown(self, drain_seconds: float | None = None) -> None:
        """Stop taking runs; let running ones finish for the drain period, then stop them
        (Crashed, "worker shut down": their retry policy decides). Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        for run_id in list(self._release_waiters):  # their deliveries go back to the queue
            self._release(run_id)
        drain = self.settings.drain_seconds if drain_seconds is None else drain_seconds
        if self.intake is not None:
            await self.intake.stop()
            for message in self.book.drain_waiting():
                await self.intake.settle(message, requeue=True)
        if self.runs or self._claims:
            logger.info("Draining %d flow run(s) for up to %gs", len(self.runs), drain)
        await self._wait_idle(time.monotonic() + drain)
        for run in list(self.runs.values()):
            logger.warning(
                "Stopping flow run %s: the worker is shutting down", run.label, extra=run_ids(run.id)
            )
            run.shutdown = True
            self._stop_process(run)
        if self._run_tasks:
            await asyncio.wait(self._run_tasks, timeout=self.settings.cancel_grace_seconds + 30)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._forker is not None:
            await self._forker.close()
        if self.tracker is not None:
            await self.tracker.close()  # and with it the connection everything above rode on
        logger.info("Worker %r stopped", self.name)

    async def _wait_idle(self, deadline: float) -> None:
        """Until no run is left, the deadline passes or a second signal says stop now."""
        while (self.runs or self._claims) and not self._force.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._changed.clear()
            waiters = [asyncio.ensure_future(self._changed.wait()), asyncio.ensure_future(self._force.wait())]
            await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"baton-worker {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Worker task %s failed", task.get_name(), exc_info=task.exception())

    async def _on_reconnect(self, connection: Connection) -> None:
        """The tracker's link reconnected (its channel is back first): this worker's control
        queue (exclusive, so gone with the old connection) and its consumers come back."""
        logger.warning("Reconnected to the broker; resuming consumption")
        if self._stopping:
            return
        self.parking.forget_channel()
        self._spawn(self.control.restore(connection, lambda: self._stopping), "control")
        if self.intake is not None:
            self._spawn(self.intake.recover(), "recover")

    # --- queues -------------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.queue_refresh_seconds)
            if not self.client.api_url or self.intake is None:
                continue
            try:
                specs = await discover_queues(self.client, self.settings)
                if specs != self.intake.specs:
                    logger.info("Queues now: %s", ", ".join(s.name for s in specs) or "none (paused)")
                await self.intake.set_queues(specs)
            except Exception as exc:
                logger.warning("Could not refresh the pool's queues: %r", exc)

    # --- deliveries and claims ----------------------------------------------------------------

    def _on_delivery(self, message: Delivery, spec: QueueSpec) -> None:
        if self.book.offer(message, spec.priority):
            self._spawn(self._claim(message), "claim")
        free = self.book.free()
        if free is not None and free <= 0 and self.intake is not None:
            self._spawn(self.intake.reconcile(), "reconcile")

    def _after_slot_change(self) -> None:
        """A claim ended or a run finished: serve waiting deliveries first, then the queues."""
        while (message := self.book.next_waiting()) is not None:
            self._spawn(self._claim(message), "claim")
        if self.intake is not None and not self._stopping:
            self._spawn(self.intake.reconcile(), "reconcile")
        self._changed.set()

    async def _claim(self, message: Delivery) -> None:
        """Claim one delivery; settle it only once the claim's verdict is in."""
        assert self.intake is not None
        requeue: bool | None = None  # settle: ack (None), or nack with/without requeue
        run: ActiveRun | None = None
        dispatch, unreadable = self._read_dispatch(message)
        if unreadable is not None:
            logger.error("Parking an unreadable dispatch message in baton.dead: %s", unreadable)
            parked = self.tracker is not None and await self.parking.park(self.tracker, message, unreadable)
            if not parked:
                requeue = False  # the broker dead-letters it (without our reason)
        if dispatch is not None and dispatch.flow_run_id in self.runs | self._claims.keys():
            # Dispatched again while this worker still has it (a retry the server scheduled, or a
            # duplicate): never dropped unseen. Once it is done here, the claim asks the tracker,
            # whose answer decides (ABORT for a duplicate, the new attempt for a retry).
            logger.info(
                "Flow run %s dispatched again while this worker has it: claiming it once done here",
                dispatch.flow_run_id,
            )
            await self._released(dispatch.flow_run_id)
            if self._stopping:
                dispatch, requeue = None, True
        if dispatch is not None and dispatch.flow_run_id not in self.runs | self._claims.keys():
            run_id = dispatch.flow_run_id
            self._claims[run_id] = None
            span = _tracing.start(
                "claim and run flow run",
                parent=_tracing.extract(message.headers),
                kind="CONSUMER",
                attributes={"baton.flow_run.id": run_id, "baton.worker": self.name},
            )
            try:
                await self.control.listen(run_id)
                run = await self._claim_run(dispatch, _tracing.traceparent_of(span))
            except TransportUnavailable as exc:  # unanswered until this worker stopped
                logger.warning(
                    "Server unreachable: flow run %s goes back to the queue (%s)",
                    run_id,
                    exc,
                    extra=run_ids(run_id),
                )
                requeue = True
            except RequestRejected as exc:
                logger.warning(
                    "Flow run %s cannot be claimed (dropped): %s", run_id, exc, extra=run_ids(run_id)
                )
            except Exception:
                logger.exception(
                    "Claim of flow run %s failed; it goes back to the queue", run_id, extra=run_ids(run_id)
                )
                requeue = True
            finally:
                cancel = self._claims.pop(run_id, None)
            if run is None:
                _tracing.end(span)
                self._release(run_id)
                await self.control.unlisten(run_id)
            else:
                run.span = span
                run.cancel_reason = cancel
                self.runs[run_id] = run
        self.book.claimed(started=run is not None)
        try:
            await self.intake.settle(message, requeue=requeue)
        finally:
            if run is not None:
                task = asyncio.create_task(self._execute(run), name=f"baton-run {run.id}")
                self._run_tasks.add(task)
                task.add_done_callback(self._run_tasks.discard)
            self._after_slot_change()

    @staticmethod
    def _read_dispatch(message: Delivery) -> tuple[FlowRunDispatch | None, str | None]:
        """The dispatch, or why the message is not one (its content type, then its schema)."""
        content_type = message.content_type or ""
        if content_type.split(";", 1)[0].strip() != "application/json":
            return None, f"content type {content_type or 'none'!r}: a dispatch is application/json"
        try:
            return FlowRunDispatch.model_validate_json(message.body), None
        except ValidationError as exc:
            return None, f"not a FlowRunDispatch: {exc}"

    async def _released(self, run_id: UUID) -> None:
        """Until this worker no longer runs or claims `run_id` (or it is stopping)."""
        while (run_id in self.runs or run_id in self._claims) and not self._stopping:
            waiter = self._release_waiters.get(run_id)
            if waiter is None:
                waiter = self._release_waiters[run_id] = asyncio.get_running_loop().create_future()
            await waiter

    def _release(self, run_id: UUID) -> None:
        waiter = self._release_waiters.pop(run_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _claim_run(self, dispatch: FlowRunDispatch, traceparent: str | None = None) -> ActiveRun | None:
        """Scheduled -> Pending under a claim; the run if it is ours now, else None.

        A claim the tracker does not answer is sent again (same transition id) until it is
        answered or this worker stops, and its delivery is held meanwhile. Given back to the
        queue instead, it would come straight back to a worker no better able to claim it, and
        each return spends one of the pool queue's deliveries: a long outage would park it in
        `baton.dead`."""
        run_id = dispatch.flow_run_id
        while True:
            proposal = ProposeState(
                flow_run_id=run_id,
                state=Pending(message=f"claimed by worker {self.name!r}"),
                claim=Claim(worker_id=self.worker_id, lease_seconds=self.settings.lease_seconds),
            )
            result = await self._propose(proposal, None, traceparent)
            CLAIMS.labels(result.verdict.value).inc()
            if result.verdict is Verdict.ACCEPT:
                label = dispatch.deployment_name or dispatch.flow_name
                logger.info(
                    "Claimed flow run %r (%s) of %r",
                    dispatch.flow_run_name,
                    run_id,
                    label,
                    extra=run_ids(run_id),
                )
                return ActiveRun(dispatch, proposal.transition_id, result.state_version)
            waiting_for_its_time = (
                result.verdict is Verdict.WAIT
                and result.state_version == dispatch.state_version  # not moved (a limit moves it)
                and result.delay_seconds
                and not self._stopping
            )
            if not waiting_for_its_time:
                logger.info(
                    "Flow run %s not taken (%s): %s",
                    run_id,
                    result.verdict.value,
                    result.reason,
                    extra=run_ids(run_id),
                )
                return None
            # dispatched ahead of its scheduled time: hold it until just before then
            delay = float(result.delay_seconds or 0) - CLAIM_LEAD_SECONDS
            await asyncio.sleep(min(max(delay, 0.01), MAX_SCHEDULE_WAIT_SECONDS))

    async def _propose(
        self, proposal: ProposeState, within: float | None, traceparent: str | None = None
    ) -> TransitionResult:
        """An RPC to the tracker, retried (same transition id: safe) while it is unreachable:
        for `within` seconds, or (None) until this worker stops. `traceparent`: the run's span
        in this worker (traces on), the parent of the tracker's span of the transition."""
        assert self.tracker is not None
        tracker = self.tracker
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransportUnavailable),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_delay(within) if within is not None else self._stopped,
            reraise=True,
        ):
            with attempt:
                return await tracker.propose_state(proposal, traceparent=traceparent)
        raise AssertionError("unreachable")

    def _stopped(self, _state: RetryCallState) -> bool:
        return self._stopping

    async def _end_run(self, run: ActiveRun, state: State) -> bool:
        """Propose the run's end under its claim (the server refuses it if the run moved on);
        True if it was taken."""
        proposal = ProposeState(flow_run_id=run.id, state=state, claim_id=run.claim_id)
        try:
            result = await asyncio.shield(
                self._propose(proposal, self.settings.claim_retry_seconds, _tracing.traceparent_of(run.span))
            )
        except (TransportUnavailable, RequestRejected) as exc:
            logger.error(
                "Could not report %s for flow run %s: %s", state.name, run.label, exc, extra=run_ids(run.id)
            )
            return False
        if result.verdict is Verdict.ACCEPT:
            logger.info("Flow run %s: %s (%s)", run.label, state.name, state.message, extra=run_ids(run.id))
            return True
        logger.debug("Flow run %s: %s not taken: %s", run.label, state.name, result.reason)
        return False

    async def _end_with_hooks(self, run: ActiveRun, state: State, config: ProcessJobConfiguration) -> None:
        """End a run whose process could not (Crashed, Cancelled), then run the flow's
        on_crashed / on_cancellation hooks in a process of their own, as its engine would."""
        if not await self._end_run(run, state):
            return
        cwd, scratch = self._working_dir(run, config)
        job = RunJob(
            run.dispatch.model_dump(mode="json"),
            run.claim_id,
            run.claimed_version,
            self.worker_id,
            hooks_state=state.model_dump(mode="json"),
        )
        ours, theirs = socket.socketpair()
        try:
            try:
                process = await self._spawner.launch(
                    job, config.command, run_env(self._base_env, job, config.env), cwd, theirs.fileno()
                )
            finally:
                theirs.close()
            assert self.tracker is not None
            relay = asyncio.create_task(serve_relay(ours, self.tracker, run.label))
            code = await self._supervise(
                ActiveRun(run.dispatch, run.claim_id, run.claimed_version), process, True
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.client.request_timeout + OUTPUT_AFTER_EXIT_SECONDS):
                    await relay
            if code != EXIT_REPORTED:
                logger.warning(
                    "Flow run %s: its hooks' process %s", run.label, _exit_text(code), extra=run_ids(run.id)
                )
        except Exception as exc:
            ours.close()
            logger.warning(
                "Flow run %s: its %s hooks could not run: %r",
                run.label,
                state.name,
                exc,
                extra=run_ids(run.id),
            )
        finally:
            if scratch is not None:
                await asyncio.to_thread(shutil.rmtree, scratch, True)

    # --- running --------------------------------------------------------------------------------

    def _working_dir(self, run: ActiveRun, config: ProcessJobConfiguration) -> tuple[Path, Path | None]:
        if config.working_dir is not None:
            config.working_dir.mkdir(parents=True, exist_ok=True)
            return config.working_dir.resolve(), None
        if run.dispatch.pull_steps:
            scratch = Path(tempfile.mkdtemp(prefix=f"baton-run-{run.id}-"))
            return scratch, scratch
        return Path.cwd(), None

    async def _execute(self, run: ActiveRun) -> None:
        scratch: Path | None = None
        try:
            if run.cancel_reason is not None:
                await self._end_run(run, Cancelled(message=run.cancel_reason))
                return
            try:
                config = ProcessJobConfiguration.from_template(
                    run.dispatch.job_template, run.dispatch.job_variables
                )
                cwd, scratch = self._working_dir(run, config)
                job = RunJob(
                    run.dispatch.model_dump(mode="json"), run.claim_id, run.claimed_version, self.worker_id
                )
                env = run_env(self._base_env, job, config.env)
                if run.span is not None:  # the run's process continues the trace
                    env[TRACEPARENT_ENV] = _tracing.traceparent_of(run.span) or ""
                launcher = (
                    self._forker
                    if self._forker is not None and self._forker.accepts(config.command)
                    else self._spawner
                )
                ours, theirs = socket.socketpair()
                try:
                    run.process = await launcher.launch(job, config.command, env, cwd, theirs.fileno())
                except BaseException:
                    ours.close()
                    raise
                finally:
                    theirs.close()
                assert self.tracker is not None
                relay = asyncio.create_task(serve_relay(ours, self.tracker, run.label))
            except Exception as exc:
                message = f"the flow run's process could not be started: {type(exc).__name__}: {exc}"
                logger.error("Flow run %s: %s", run.label, message, extra=run_ids(run.id))
                await self._end_run(run, Failed(message=message))
                return
            logger.info("Flow run %s started (pid %d)", run.label, run.process.pid, extra=run_ids(run.id))
            RUN_START_SECONDS.observe(max(0.0, time.time() - run.dispatch.scheduled_time.timestamp()))
            if run.cancel_reason is not None or run.shutdown or run.suspended:
                self._stop_process(run)
            code = await self._supervise(run, run.process, config.stream_output)
            try:  # what the process asked for before it ended lands before anything we say
                async with asyncio.timeout(self.client.request_timeout + OUTPUT_AFTER_EXIT_SECONDS):
                    await relay
            except TimeoutError:
                logger.warning(
                    "Flow run %s: requests of its process left unanswered", run.label, extra=run_ids(run.id)
                )
            logger.info("Flow run %s process %s", run.label, _exit_text(code), extra=run_ids(run.id))
            if run.suspended:  # Suspended already; resumed, it is dispatched again
                PROCESS_EXITS.labels("suspended").inc()
            elif run.cancel_reason is not None:
                PROCESS_EXITS.labels("cancelled").inc()
                await self._end_with_hooks(run, Cancelled(message=run.cancel_reason), config)
            elif run.shutdown:
                PROCESS_EXITS.labels("shutdown").inc()
                await self._end_with_hooks(run, Crashed(message="worker shut down"), config)
            elif code in (EXIT_REPORTED, EXIT_ABORTED):
                PROCESS_EXITS.labels("reported" if code == EXIT_REPORTED else "aborted").inc()
            else:
                PROCESS_EXITS.labels("crashed").inc()
                crashed = Crashed(message=crash_message(_exit_text(code), run.tail))
                await self._end_with_hooks(run, crashed, config)
        except Exception:
            logger.exception("Flow run %s: the worker failed to run it", run.label, extra=run_ids(run.id))
        finally:
            _tracing.end(run.span)
            self.runs.pop(run.id, None)
            self._release(run.id)
            self.book.finished()
            await self.control.unlisten(run.id)
            if scratch is not None:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
            self._after_slot_change()

    async def _supervise(self, run: ActiveRun, process: RunProcess, stream_output: bool) -> int:
        echo = console_streams() if (stream_output and self._echo) else {}
        pumps = [
            asyncio.create_task(pump(reader, echo.get(name), run.tail if name != "console" else None))
            for name, reader in process.streams.items()
        ]
        try:
            code = await process.wait()
            _, slow = await asyncio.wait(pumps, timeout=OUTPUT_AFTER_EXIT_SECONDS)
            for task in slow:
                task.cancel()
            return code
        finally:
            for task in pumps:
                task.cancel()
            process.close()

    def _stop_process(self, run: ActiveRun) -> None:
        if run.stopping is None or run.stopping.done():
            run.stopping = self._spawn(self._terminate(run), f"stop {run.id}")

    async def _terminate(self, run: ActiveRun) -> None:
        """SIGTERM the run's process group; SIGKILL it after the grace period."""
        process = run.process
        if process is None or process.returncode is not None:
            return
        process.signal_group(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.cancel_grace_seconds):
                await process.wait()
        except TimeoutError:
            logger.warning(
                "Flow run %s did not stop in %gs: killing it", run.label, self.settings.cancel_grace_seconds
            )
            process.signal_group(signal.SIGKILL)

    # --- control and heartbeats ---------------------------------------------------------------

    def _on_control(self, control: ControlMessage) -> None:
        if control.kind is ControlKind.SUSPEND:
            self._suspend(control)
            return
        if control.kind is not ControlKind.CANCEL:
            logger.info("Ignoring control %s for flow run %s", control.kind.value, control.flow_run_id)
            return
        reason = control.reason or "cancelled"
        if control.flow_run_id in self._claims:
            self._claims[control.flow_run_id] = reason
        run = self.runs.get(control.flow_run_id)
        if run is not None and run.cancel_reason is None:
            logger.info("Cancelling flow run %s: %s", run.label, reason, extra=run_ids(run.id))
            run.cancel_reason = reason
            if run.process is not None:
                self._stop_process(run)

    def _suspend(self, control: ControlMessage) -> None:
        run = self.runs.get(control.flow_run_id)
        if run is None or run.suspended:
            return
        logger.info("Suspending flow run %s: %s", run.label, control.reason or "", extra=run_ids(run.id))
        run.suspended = True
        if run.process is not None:
            self._stop_process(run)

    async def _heartbeat(self) -> None:
        if self.tracker is None:
            return
        message = Heartbeat(
            worker_id=self.worker_id,
            worker=WorkerInfo(
                name=self.name,
                pool_name=self.settings.pool,
                slots=self.settings.limit,
                running=len(self.runs),
            ),
            # and the runs it is claiming: a claim the tracker accepted but whose answer has not
            # reached us yet (lost in an outage, resent under its transition id) is ours, and
            # its lease must not lapse while we are alive and asking
            flow_run_ids=[*self.runs, *self._claims],
            interval_seconds=self.settings.heartbeat_seconds,
            lease_seconds=self.settings.lease_seconds,
        )
        try:
            await self.tracker.send(message, timeout=self.settings.heartbeat_seconds)
        except Exception as exc:
            logger.warning("Heartbeat not delivered: %s", exc)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            await self._heartbeat()


def run_ids(run_id: UUID) -> dict[str, str]:
    """A record's `extra`: the run it is about, a field of its own in JSON logs."""
    return {"flow_run_id": str(run_id)}


def configure_logging(level: str = "INFO") -> None:
    """The worker's records and its libraries' (aio-pika) in the format of every Baton process."""
    install("worker", level)
