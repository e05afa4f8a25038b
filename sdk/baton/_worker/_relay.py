"""The run process talks to the tracker through its worker, over a socket pair.

A flow run's process does not open a broker connection of its own (that costs ~50 ms of start
and a connection per run at the broker): its reporter's transport is a `RelayTransport` on the
socket it inherited (`BATON_RELAY_FD`), and the worker forwards each request with its own
tracker client. Requests and answers are the same `baton_schemas` models as on the broker, so
retries, idempotency (transition ids) and errors behave exactly as with `AmqpTracker`.

Frames: a 4-byte big-endian length, then a JSON header line, then the model's JSON.
    request header: {"id": n, "op": "propose_state" | "create_flow_run" | "send", "kind": ...,
                     "traceparent": ... (only when the process traces: passed on to the tracker)}
    answer header:  {"id": n, "ok": true} or {"id": n, "ok": false, "status": 503, "error": "..."}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from baton_schemas.envelopes import Heartbeat, Logs, ProposeState, TaskRunStates
from baton_schemas.runs import FlowRun, FlowRunCreate
from baton_schemas.states import TransitionResult

from .._tracing import TRACEPARENT
from .._transport import RequestRejected, TransportGone, TransportUnavailable

if TYPE_CHECKING:
    from .._transport.amqp import AmqpTracker

logger = logging.getLogger("baton.worker")

RELAY_FD_ENV = "BATON_RELAY_FD"
_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20
# How long a heartbeat waits for the worker before the process sends it to the broker itself
# (at most; a quarter of the lease where that is shorter).
HEARTBEAT_RELAY_SECONDS = 3.0


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """One frame; raises asyncio.IncompleteReadError at the end of the stream."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ValueError(f"relay frame of {length} bytes")
    frame = await reader.readexactly(length)
    header, _, body = frame.partition(b"\n")
    return orjson.loads(header), body


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    payload = orjson.dumps(header) + b"\n" + body
    return _LENGTH.pack(len(payload)) + payload


# --- in the run's process ----------------------------------------------------------------------


class RelayTransport:
    """A `Transport` whose requests the worker forwards to the tracker."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        broker_url: str | None = None,
        heartbeat_relay_seconds: float = HEARTBEAT_RELAY_SECONDS,
    ) -> None:
        self._broker_url = broker_url
        self._heartbeat_relay = heartbeat_relay_seconds
        self._direct: AmqpTracker | None = None
        self._reader = reader
        self._writer = writer
        self.timeout = timeout
        self._pending: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._reading = asyncio.create_task(self._read(), name="baton-relay")

    @classmethod
    async def open(
        cls, fd: int, timeout: float = 30.0, broker_url: str | None = None, lease_seconds: float = 30.0
    ) -> RelayTransport:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer, timeout, broker_url, min(HEARTBEAT_RELAY_SECONDS, lease_seconds / 4))

    async def _read(self) -> None:
        error: BaseException = TransportGone("the worker closed the relay")
        try:
            while True:
                header, body = await read_frame(self._reader)
                future = self._pending.pop(header.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result((header, body))
        except (asyncio.IncompleteReadError, OSError, ValueError) as exc:
            error = TransportGone(f"relay to the worker lost: {exc!r}")
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()

    async def _call(
        self, op: str, body: bytes, kind: str | None = None, traceparent: str | None = None
    ) -> bytes:
        if self._closed or self._reading.done():
            raise TransportGone("the relay to the worker is closed")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[tuple[dict[str, Any], bytes]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            async with asyncio.timeout(self.timeout):
                request: dict[str, Any] = {"id": request_id, "op": op, "kind": kind}
                if traceparent is not None:
                    request[TRACEPARENT] = traceparent
                async with self._lock:
                    self._writer.write(frame(request, body))
                    await self._writer.drain()
                header, answer = await future
        except TimeoutError as exc:
            raise TransportUnavailable(f"no answer from the worker to {op} in {self.timeout:g}s") from exc
        except OSError as exc:
            raise TransportGone(f"relay to the worker lost: {exc!r}") from exc
        finally:
            self._pending.pop(request_id, None)
        if not header.get("ok"):
            status, error = int(header.get("status", 500)), str(header.get("error") or "failed")
            if status >= 500:
                raise TransportUnavailable(error)
            raise RequestRejected(status, error)
        return answer

    async def propose_state(
        self, proposal: ProposeState, *, traceparent: str | None = None
    ) -> TransitionResult:
        answer = await self._call("propose_state", proposal.to_json(), traceparent=traceparent)
        return TransitionResult.model_validate_json(answer)

    async def create_flow_run(self, run: FlowRunCreate) -> FlowRun:
        return FlowRun.model_validate_json(await self._call("create_flow_run", run.to_json()))

    async def send(
        self, message: TaskRunStates | Logs | Heartbeat, *, traceparent: str | None = None
    ) -> None:
        await self._call("send", message.to_json(), kind=message.kind, traceparent=traceparent)

    async def heartbeat(self, message: Heartbeat) -> list[UUID]:
        """Through the worker; if it does not answer soon (paused, stuck), straight to the
        broker on a connection of this process's own, opened then and kept."""
        if self._direct is None:
            try:
                async with asyncio.timeout(self._heartbeat_relay):
                    await self.send(message)
                return []  # the worker stops this process itself when its run is cancelled
            except (TimeoutError, TransportUnavailable) as exc:
                if not self._broker_url:
                    raise TransportUnavailable(f"heartbeat not relayed: {exc!r}") from exc
                logger.warning("The worker does not relay heartbeats (%r): sending them directly", exc)
        return await (await self._direct_tracker()).heartbeat(message)

    async def _direct_tracker(self) -> AmqpTracker:
        if self._direct is None:
            from .._transport.amqp import AmqpTracker

            assert self._broker_url is not None
            self._direct = await AmqpTracker.connect(
                self._broker_url, connect_timeout=self.timeout, rpc_timeout=self.timeout
            )
        return self._direct

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._direct is not None:
            with contextlib.suppress(Exception):
                await self._direct.close()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


# --- in the worker ------------------------------------------------------------------------------


async def _answer(tracker: AmqpTracker, header: dict[str, Any], body: bytes) -> bytes:
    op = header.get("op")
    traceparent = header.get(TRACEPARENT)
    if not isinstance(traceparent, str):
        traceparent = None
    if op == "propose_state":
        result = await tracker.propose_state(ProposeState.model_validate_json(body), traceparent=traceparent)
        return result.to_json()
    if op == "create_flow_run":
        run = await tracker.create_flow_run(FlowRunCreate.model_validate_json(body))
        return run.to_json()
    if op == "send":
        models: dict[str, type[Logs] | type[TaskRunStates] | type[Heartbeat]] = {
            "logs": Logs,
            "task_run_states": TaskRunStates,
            "heartbeat": Heartbeat,
        }
        model = models.get(str(header.get("kind")))
        if model is None:
            raise RequestRejected(422, f"unknown message kind {header.get('kind')!r}")
        await tracker.send(model.model_validate_json(body), traceparent=traceparent)
        return b""
    raise RequestRejected(422, f"unknown relay operation {op!r}")


async def serve_relay(sock: socket.socket, tracker: AmqpTracker, label: str) -> None:
    """Forward a run process's requests until it closes its end (it exited)."""
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    lock = asyncio.Lock()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(header: dict[str, Any], body: bytes) -> None:
        reply: dict[str, Any] = {"id": header.get("id"), "ok": True}
        answer = b""
        try:
            answer = await _answer(tracker, header, body)
        except TransportUnavailable as exc:
            reply.update(ok=False, status=503, error=str(exc))
        except RequestRejected as exc:
            reply.update(ok=False, status=exc.status, error=exc.detail)
        except ValidationError as exc:
            reply.update(ok=False, status=422, error=str(exc))
        except Exception as exc:
            logger.exception("Relay of %s for %s failed", header.get("op"), label)
            reply.update(ok=False, status=500, error=repr(exc))
        async with lock:
            with contextlib.suppress(OSError):
                writer.write(frame(reply, answer))
                await writer.drain()

    try:
        while True:
            try:
                header, body = await read_frame(reader)
            except (asyncio.IncompleteReadError, OSError, ValueError):
                break
            task = asyncio.create_task(handle(header, body))
            handlers.add(task)
            task.add_done_callback(handlers.discard)
        if handlers:  # what the process asked for before it ended is still delivered
            await asyncio.wait(handlers)
    finally:
        for task in handlers:
            task.cancel()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
