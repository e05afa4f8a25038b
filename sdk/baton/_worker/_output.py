"""A run process's output: echoed on the worker's console (its own log), never the run's logs.

`print()` reaches a run's logs the same way wherever the flow runs: through its engine, only
with `log_prints=True`. The raw stdout and stderr of the process are the worker's business:
echoed on its console when the job's `stream_output` is on, and their last lines kept for the
Crashed state's message if the process dies without reporting. Baton's own console output of
the process (`console`, already shipped by its engine) is echoed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from typing import IO

MAX_LINE = 16_000  # a longer line is cut into several (for the tail)
TAIL_LINE = 500  # a tail line longer than this is shortened in the state message


async def pump(reader: asyncio.StreamReader, echo: IO[bytes] | None, tail: deque[str] | None = None) -> None:
    """Copy one stream of a run's process to the console line by line, keeping the last lines."""
    pending = b""

    def emit(raw: bytes) -> None:
        if echo is not None:
            with contextlib.suppress(Exception):
                echo.write(raw + b"\n")
                echo.flush()
        if tail is not None:
            text = raw.decode(errors="replace").rstrip()
            if text.strip():
                tail.append(text if len(text) <= TAIL_LINE else text[: TAIL_LINE - 1] + "…")

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


def crash_message(exit_text: str, tail: deque[str]) -> str:
    """`the flow run's process exited with code 7`, with the last lines of its output."""
    message = f"the flow run's process {exit_text}"
    if not tail:
        return message
    if len(tail) == 1:
        return f"{message}: {tail[0]}"
    lines = "\n".join(tail)
    return f"{message}; the last lines of its output:\n{lines}"


def console_streams() -> dict[str, IO[bytes]]:
    return {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer, "console": sys.stderr.buffer}
