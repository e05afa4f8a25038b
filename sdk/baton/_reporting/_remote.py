"""A reporter that delivers to Baton over a `Transport`, from its own thread and event loop.

Task-run states and logs go into bounded buffers and are sent in batches at least every
`flush_interval` (sooner when a batch fills). Flow-run creation and proposals are RPCs, retried
with capped, jittered backoff for `outage_grace_seconds` (same transition id, so retries are
safe); past that the engine goes on locally and the request is queued, in order, for delivery
when the server is back. Nothing here ever raises into the user's flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid4

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_delay,
    stop_never,
    wait_random_exponential,
)

from baton_schemas.envelopes import Heartbeat, Logs, TaskRunStateReport, TaskRunStates
from baton_schemas.logs import LogRecord

from .. import _tracing
from .._loop_thread import LoopThread
from .._transport import RequestRejected, Transport, TransportError, TransportGone, TransportUnavailable
from ._spool import flush_spool, spooled_files, write_spool

if TYPE_CHECKING:
    from baton_schemas.envelopes import ProposeState
    from baton_schemas.runs import FlowRun, FlowRunCreate
    from baton_schemas.states import State, TransitionResult

    from .._records import TaskRunRecord
    from .._settings import ClientSettings

logger = logging.getLogger("baton.reporter")
T = TypeVar("T")

_TaskStateItem = tuple["TaskRunRecord", "State", int]
# (record id, flow run, task run, logger name, level, message, created): the id is chosen here,
# so a batch rebuilt after a failed send is stored once however often it is sent
_LogItem = tuple[UUID, UUID, UUID | None, str, int, str, float]


def _task_flow_run(item: _TaskStateItem) -> UUID | None:
    return item[0].flow_run_id


def _log_flow_run(item: _LogItem) -> UUID:
    return item[1]


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


@dataclass(frozen=True, slots=True)
class ReporterConfig:
    max_buffered: int = 100_000
    batch_size: int = 1000
    flush_interval: float = 1.0
    outage_grace: float = 15.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    heartbeat_interval: float = 10.0
    lease_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: ClientSettings) -> ReporterConfig:
        return cls(
            max_buffered=settings.buffer_max_items,
            flush_interval=settings.flush_interval,
            outage_grace=settings.outage_grace_seconds,
            heartbeat_interval=settings.heartbeat_interval,
            lease_seconds=settings.lease_seconds,
        )


@dataclass(slots=True)
class _FlowOp:
    """A flow-run RPC kept for delivery after an outage."""

    kind: str
    payload: Any
    answer: asyncio.Future[Any] | None = None  # a durable op's caller waits on it
    traceparent: str | None = None  # the span it was made in (traces on), sent with it

    @property
    def durable(self) -> bool:
        """The end of a run claimed by a worker: proposed until answered, never given up
        (the run stays its claim's until then, and the engine never retries it on its own)."""
        if self.kind != "propose_state":
            return False
        return self.payload.claim_id is not None and self.payload.state.is_terminal

    @property
    def claimed(self) -> bool:
        return self.kind == "propose_state" and self.payload.claim_id is not None

    def settle(self, value: Any) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(value)


class RemoteReporter:
    ships_logs = True

    def __init__(
        self,
        connect: Callable[[], Awaitable[Transport]],
        config: ReporterConfig | None = None,
        *,
        name: str = "remote",
    ) -> None:
        self._connect = connect
        self.config = config or ReporterConfig()
        self._thread = LoopThread(f"baton-reporter-{name}")
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._transport: Transport | None = None
        self._task_states: deque[_TaskStateItem] = deque()
        self._logs: deque[_LogItem] = deque()
        self._flow_ops: deque[_FlowOp] = deque()
        self._tracked: set[UUID] = set()
        self._cancelling: set[UUID] = set()  # written by the I/O thread, read by run threads
        self._background: list[asyncio.Task[None]] = []
        self._wakeup: asyncio.Event | None = None
        self._wake_pending = False
        self._drain_lock: asyncio.Lock | None = None
        self._connect_lock: asyncio.Lock | None = None
        self.dropped = 0
        self.outage = False
        self.disabled = False  # the server refused our credentials: stop reporting
        self._unregistered: set[UUID] = set()  # runs the server refused to create
        self._spool_flush: asyncio.Task[None] | None = None
        # traces on: each tracked flow run's span, sent with the batches of its task-run states
        # and logs (whose items carry no span of their own: nothing to do per item)
        self._spans: dict[UUID | None, str] = {}
        self._spans_ended: set[UUID] = set()  # forgotten once what they sent is delivered

    # --- called from the engine's threads ---------------------------------------------------

    def create_flow_run(self, run: FlowRunCreate) -> Future[FlowRun | None]:
        return self._submit(self._rpc(_FlowOp("create_flow_run", run)))

    def propose_state(self, proposal: ProposeState) -> Future[TransitionResult | None]:
        traceparent = _tracing.current()  # the engine's span (None, at once, when traces are off)
        if traceparent is not None:
            self._spans[proposal.flow_run_id] = traceparent
        return self._submit(self._rpc(_FlowOp("propose_state", proposal, traceparent=traceparent)))

    def report_task_run_state(self, task_run: TaskRunRecord, state: State, version: int) -> None:
        self._buffer(self._task_states, (task_run, state, version))

    def emit_log(
        self,
        flow_run_id: UUID,
        task_run_id: UUID | None,
        name: str,
        level: int,
        message: str,
        created: float,
    ) -> None:
        self._buffer(self._logs, (uuid4(), flow_run_id, task_run_id, name, level, message, created))

    def track_flow_run(self, flow_run_id: UUID) -> None:
        self._ensure_started()
        self._tracked.add(flow_run_id)

    def untrack_flow_run(self, flow_run_id: UUID) -> None:
        self._tracked.discard(flow_run_id)
        if self._spans:  # its last logs are still to be sent in its trace
            self._spans_ended.add(flow_run_id)

    def cancel_requested(self, flow_run_id: UUID) -> bool:
        return flow_run_id in self._cancelling

    def flush(self, timeout: float) -> Future[bool]:
        if not self._started or self._closed:
            return _done(not self.pending())
        if self.outage:  # the background loop is retrying already; don't wait on it
            self._wake()
            return _done(False)
        return self._thread.submit(self._flush(timeout))

    async def _flush(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self._drain(time.monotonic() + timeout), timeout)
        except (TimeoutError, TransportError):
            return False

    def close(self, timeout: float) -> None:
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        if not started:
            return
        future = self._thread.submit(self._shutdown(time.monotonic() + timeout))
        try:
            future.result(timeout + 5)
        except Exception as exc:
            logger.warning("Baton reporter did not shut down cleanly: %r", exc)
        self._thread.stop()

    def connect_soon(self) -> None:
        """Open the connection in the background now, before the first request needs it (a
        worker's run process knows it will report: it connects while it loads the flow)."""
        self._ensure_started()
        if self._started and not self._closed:
            self._thread.submit(self._warm_up())

    async def _warm_up(self) -> None:
        try:
            await self._transport_()
        except TransportError as exc:
            logger.debug("Early connection failed (retried on first use): %s", exc)

    def pending(self) -> int:
        return len(self._task_states) + len(self._logs) + len(self._flow_ops)

    # --- plumbing ---------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._started:
            return
        with self._start_lock:
            if self._started or self._closed:
                return
            self._thread.submit(self._start()).result()
            self._started = True

    async def _start(self) -> None:
        self._wakeup = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._background = [
            asyncio.create_task(self._flush_loop(), name="baton-flush"),
            asyncio.create_task(self._heartbeat_loop(), name="baton-heartbeat"),
        ]

    def _submit(self, coro: Any) -> Future[Any]:
        self._ensure_started()
        if self._closed:
            coro.close()
            failed: Future[Any] = Future()
            failed.set_result(None)
            return failed
        return self._thread.submit(coro)

    def _buffer(self, queue: deque[Any], item: Any) -> None:
        if self.disabled:
            return
        if not self._started:
            self._ensure_started()
        if len(queue) >= self.config.max_buffered:
            queue.popleft()
            self.dropped += 1
            if self.dropped == 1:
                logger.warning(
                    "Baton's delivery buffer is full (%d items): dropping the oldest run states "
                    "and logs until the server is reachable again.",
                    self.config.max_buffered,
                )
        queue.append(item)
        if len(queue) >= self.config.batch_size and not self._wake_pending:
            self._wake()

    def _wake(self) -> None:
        if self._started and not self._closed:
            self._wake_pending = True
            try:
                self._thread.call_soon(self._set_wakeup)
            except RuntimeError:  # loop already closed
                pass

    def _set_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    # --- on the reporter's loop ------------------------------------------------------------

    async def _transport_(self) -> Transport:
        if self._transport is None:
            assert self._connect_lock is not None
            async with self._connect_lock:  # one connection, however many callers race for it
                if self._transport is None:
                    try:
                        self._transport = await self._connect()
                    except TransportError:
                        raise
                    except Exception as exc:  # a connect that fails in an unexpected way
                        raise TransportUnavailable(repr(exc)) from exc
        return self._transport

    async def _call(self, op: _FlowOp) -> Any:
        transport = await self._transport_()
        if op.kind == "create_flow_run":
            return await transport.create_flow_run(op.payload)
        return await transport.propose_state(op.payload, traceparent=op.traceparent)

    async def _retrying(self, fn: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        stop = stop_never if deadline is None else stop_after_delay(max(0.0, deadline - time.monotonic()))
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransportUnavailable) & retry_if_not_exception_type(TransportGone),
            wait=wait_random_exponential(multiplier=self.config.backoff_initial, max=self.config.backoff_max),
            stop=stop,
            before_sleep=self._on_retry,
            reraise=True,
        ):
            with attempt:
                result = await fn()
        self.outage = False
        if self._spool_flush is None:  # the server is reachable: deliver what others spooled
            self._spool_flush = asyncio.create_task(self._flush_spool(), name="baton-spool")
        return result

    async def _flush_spool(self) -> None:
        if not spooled_files():
            return
        try:
            done = await flush_spool(await self._transport_())
            if done.files:
                logger.info("Delivered %d spooled request(s) from %d file(s)", done.requests, done.files)
        except Exception as exc:  # the next process that reaches the server tries again
            logger.debug("Spooled requests not delivered: %r", exc)

    def _on_retry(self, retry_state: Any) -> None:
        if not self.outage:
            self.outage = True
            logger.warning(
                "Baton server unreachable (%s); retrying in the background.",
                retry_state.outcome.exception(),
            )

    def _refused(self, what: str, exc: RequestRejected) -> None:
        if exc.status in (401, 403):
            if not self.disabled:
                self.disabled = True
                self._task_states.clear()
                self._logs.clear()
                logger.warning(
                    "Baton server refused our credentials (%s): runs go on without reporting.", exc
                )
        else:
            logger.warning("Baton server refused %s: %s", what, exc)

    async def _rpc(self, op: _FlowOp) -> Any:
        if self.disabled:
            return None
        if op.kind == "propose_state" and op.payload.flow_run_id in self._unregistered:
            return None
        if self._flow_ops:  # earlier requests wait for delivery: keep the order
            self._flow_ops.append(op)
            self._set_wakeup()
            if op.durable:
                op.answer = asyncio.get_running_loop().create_future()
                return await op.answer
            return None
        # A run of its own (no worker's claim) goes on locally at once when the server cannot be
        # reached: what it reports is delivered later, or spooled to disk at exit.
        grace = self.config.outage_grace if op.claimed else 0.0
        try:
            deadline = None if op.durable else time.monotonic() + grace
            return await self._retrying(lambda: self._call(op), deadline)
        except TransportUnavailable as exc:
            if not self.outage or grace:
                logger.warning(
                    "Baton server unreachable (%s): the run goes on locally; what it reports is "
                    "delivered when the server is back (or spooled under BATON_HOME at exit).",
                    exc,
                )
            self.outage = True
            self._flow_ops.append(op)
            self._set_wakeup()
            return None
        except RequestRejected as exc:
            if op.kind == "create_flow_run" and op.payload.id is not None:
                self._unregistered.add(op.payload.id)
            self._refused(f"{op.kind} (the run goes on locally)", exc)
            return None

    async def _flush_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.config.flush_interval)
            except TimeoutError:
                pass
            self._wakeup.clear()
            self._wake_pending = False
            try:
                await self._drain(None)
            except Exception:  # never let the loop die; the next round tries again
                logger.exception("Baton reporter failed to deliver a batch")

    async def _drain(self, deadline: float | None) -> bool:
        """Deliver everything buffered; with a deadline, give up (keeping the rest) at it."""
        assert self._drain_lock is not None
        async with self._drain_lock:
            if self.disabled:
                for op in self._flow_ops:
                    op.settle(None)
                self._flow_ops.clear()
                return True
            try:
                await self._deliver_flow_ops(deadline)
                await self._deliver(self._task_states, self._task_states_message, deadline, _task_flow_run)
                await self._deliver(self._logs, self._logs_message, deadline, _log_flow_run)
            except TransportUnavailable:
                return False
        if self._spans_ended and not self.pending():
            for flow_run_id in list(self._spans_ended):
                self._spans_ended.discard(flow_run_id)
                self._spans.pop(flow_run_id, None)
        return not self.pending()

    async def _deliver_flow_ops(self, deadline: float | None) -> None:
        while self._flow_ops:
            op = self._flow_ops[0]
            result = None
            try:
                result = await self._retrying(lambda: self._call(op), deadline)  # noqa: B023
                logger.debug("Delivered a delayed %s: %s", op.kind, result)
            except RequestRejected as exc:
                self._refused(f"a delayed {op.kind}", exc)
            self._flow_ops.popleft()
            op.settle(result)

    async def _deliver(
        self,
        queue: deque[Any],
        build: Callable[[list[Any]], Any],
        deadline: float | None,
        flow_run_of: Callable[[Any], UUID | None],
    ) -> None:
        while queue:
            transport = await self._retrying(self._transport_, deadline)
            batch = [queue.popleft() for _ in range(min(len(queue), self.config.batch_size))]
            message = build(batch)
            # traces on: the batch goes in the trace of the flow run of its first item
            traceparent = self._spans.get(flow_run_of(batch[0])) if self._spans else None

            async def send(
                message: Any = message,
                transport: Transport = transport,
                traceparent: str | None = traceparent,
            ) -> None:
                await transport.send(message, traceparent=traceparent)

            try:
                await self._retrying(send, deadline)
            except RequestRejected as exc:
                self._refused(f"a batch of {len(batch)} items", exc)
            except BaseException:  # unavailable, or cancelled: keep them, in order, for later
                queue.extendleft(reversed(batch))
                raise

    @staticmethod
    def _task_states_message(batch: list[_TaskStateItem]) -> Any:
        reports = [
            TaskRunStateReport(task_run=run.to_info(), state=state, version=version)
            for run, state, version in batch
        ]
        return TaskRunStates(reports=reports)

    @staticmethod
    def _logs_message(batch: list[_LogItem]) -> Any:
        return Logs(
            logs=[
                LogRecord(
                    id=log_id,
                    flow_run_id=flow_run_id,
                    task_run_id=task_run_id,
                    name=name,
                    level=level,
                    message=message,
                    timestamp=datetime.fromtimestamp(created, UTC),
                )
                for log_id, flow_run_id, task_run_id, name, level, message, created in batch
            ]
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            if not self._tracked:  # in an outage too: a heartbeat may wait on the broker's queue
                continue
            message = Heartbeat(flow_run_ids=list(self._tracked), lease_seconds=self.config.lease_seconds)
            try:
                cancelling = await (await self._transport_()).heartbeat(message)
                self._cancelling.update(cancelling)
            except TransportError as exc:
                logger.debug("Heartbeat not delivered: %s", exc)

    def _spool(self) -> None:
        """Write what is left to `$BATON_HOME/spool`, for the next process that reaches the
        server (or `baton spool flush`) to deliver."""
        records: list[tuple[str, bytes]] = [(op.kind, op.payload.to_json()) for op in self._flow_ops]
        states, logs = list(self._task_states), list(self._logs)
        for i in range(0, len(states), self.config.batch_size):
            records.append(
                ("send", self._task_states_message(states[i : i + self.config.batch_size]).to_json())
            )
        for i in range(0, len(logs), self.config.batch_size):
            records.append(("send", self._logs_message(logs[i : i + self.config.batch_size]).to_json()))
        try:
            path = write_spool(records)
        except OSError as exc:
            logger.warning(
                "Baton server unreachable and the spool cannot be written (%r): %d run states, "
                "%d log records and %d flow-run updates are lost.",
                exc,
                len(states),
                len(logs),
                len(self._flow_ops),
            )
            return
        if path is not None:
            logger.warning(
                "Baton server unreachable: %d run states, %d log records and %d flow-run updates "
                "were spooled to %s; they are delivered when a Baton process next reaches the "
                "server, or by `baton spool flush`.",
                len(states),
                len(logs),
                len(self._flow_ops),
                path,
            )
            self._task_states.clear()
            self._logs.clear()
            self._flow_ops.clear()

    async def _shutdown(self, deadline: float) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        delivered = await self._drain(deadline)
        if not delivered:
            self._spool()
        if self._spool_flush is not None and not self._spool_flush.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(self._spool_flush), max(0.1, deadline - time.monotonic())
                )
            self._spool_flush.cancel()
        if self._transport is not None:
            try:
                await self._transport.close()
            except Exception as exc:
                logger.debug("Closing the transport failed: %r", exc)
