"""A run process's output: echoed on the worker's console, shipped as the run's logs.

stdout and stderr lines become log records (`baton.process.stdout` / `.stderr`) sent in
batches (`Logs` over the tracker's fire-and-forget route) at least every `interval`; Baton's
own console output of the process (already shipped by its engine) is only echoed. The last
lines of stderr are kept for the state message if the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

from baton_schemas.envelopes import Logs
from baton_schemas.logs import LogRecord

logger = logging.getLogger("baton.worker")

MAX_LINE = 16_000  # longer lines are split into several records
BATCH = 1000
LEVELS = {"stdout": logging.INFO, "stderr": logging.INFO}


class LogShipper:
    """Batches records of every run; `send` is the tracker's `send` (a `Logs` message)."""

    def __init__(self, send: Any, *, interval: float = 0.5, max_buffered: int = 100_000) -> None:
        self._send = send
        self.interval = interval
        self.max_buffered = max_buffered
        self._buffer: deque[tuple[UUID, str, int, str, datetime]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="baton-worker-logs")

    def add(self, flow_run_id: UUID, stream: str, line: str) -> None:
        if len(self._buffer) >= self.max_buffered:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append((flow_run_id, f"baton.process.{stream}", LEVELS[stream], line, datetime.now(UTC)))
        if len(self._buffer) >= BATCH:
            self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> bool:
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
            records = [
                LogRecord(flow_run_id=run_id, name=name, level=level, message=message, timestamp=at)
                for run_id, name, level, message, at in batch
            ]
            try:
                await self._send(Logs(logs=records))
            except Exception as exc:  # keep them for the next round
                logger.debug("Process output not shipped yet: %r", exc)
                self._buffer.extendleft(reversed(batch))
                return False
        return True

    async def close(self, timeout: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not await self.flush():
                    await asyncio.sleep(0.2)


async def pump(
    reader: asyncio.StreamReader,
    stream: str,
    flow_run_id: UUID,
    shipper: LogShipper | None,
    echo: IO[bytes] | None,
    tail: deque[str] | None = None,
) -> None:
    """Copy one stream of a run's process to the console and the run's logs, line by line."""
    pending = b""

    def emit(raw: bytes) -> None:
        if echo is not None:
            with contextlib.suppress(Exception):
                echo.write(raw + b"\n")
                echo.flush()
        text = raw.decode(errors="replace").rstrip("\r")
        if tail is not None and text.strip():
            tail.append(text)
        if shipper is not None:
            for start in range(0, max(len(text), 1), MAX_LINE):
                shipper.add(flow_run_id, stream, text[start : start + MAX_LINE])

    while chunk := await reader.read(1 << 16):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            emit(line)
        if len(pending) > MAX_LINE:
            emit(pending)
            pending = b""
    if pending:
        emit(pending)


def console_streams() -> dict[str, IO[bytes]]:
    return {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer, "console": sys.stderr.buffer}
