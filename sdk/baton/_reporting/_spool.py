"""What a run could not deliver before its process exited, kept on disk until the server is back.

    $BATON_HOME/spool/<time>-<uuid>.jsonl     one file per process that had something left

Each line is one request, in the order it was made: `{"op": "create_flow_run" | "propose_state"
| "send", "body": <the model's JSON>}`. Every request is idempotent on the server (run ids,
transition ids, state ids and log ids are chosen by the client), so a file delivered twice, or
half-delivered and then delivered again, changes nothing the second time. A file is removed once
all of it was delivered; a request the server refuses (4xx) is dropped with a warning, as it
would have been live. `baton spool flush` delivers the files, and so does any Baton process that
reports to the server, once it has reached it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import TypeAdapter

from baton_schemas.envelopes import Logs, ProposeState, TaskRunStates
from baton_schemas.runs import FlowRunCreate

from .._settings import baton_home
from .._transport import RequestRejected

if TYPE_CHECKING:
    from .._transport import Transport

logger = logging.getLogger("baton.reporter")

_SENDABLE: TypeAdapter[TaskRunStates | Logs] = TypeAdapter(TaskRunStates | Logs)


def spool_dir() -> Path:
    return baton_home() / "spool"


def write_spool(records: list[tuple[str, bytes]]) -> Path | None:
    """Write one file of `(op, body)` records atomically (a reader never sees half of it)."""
    if not records:
        return None
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{uuid.uuid4().hex}.jsonl"
    partial = folder / f".{name}.part"
    with partial.open("wb") as f:
        for op, body in records:
            f.write(orjson.dumps({"op": op, "body": body.decode()}) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    final = folder / name
    partial.rename(final)
    return final


def spooled_files() -> list[Path]:
    folder = spool_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on a spool file: two flushers never deliver one file."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        yield False
        return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


@dataclass
class FlushResult:
    files: int = 0
    requests: int = 0
    refused: int = 0
    left: int = 0  # files still spooled (the server went away again, or another flusher has them)


async def _deliver(transport: Transport, record: dict[str, Any]) -> None:
    op, body = record["op"], record["body"]
    if op == "create_flow_run":
        await transport.create_flow_run(FlowRunCreate.model_validate_json(body))
    elif op == "propose_state":
        await transport.propose_state(ProposeState.model_validate_json(body))
    elif op == "send":
        await transport.send(_SENDABLE.validate_json(body))
    else:
        raise ValueError(f"unknown spooled operation {op!r}")


async def flush_spool(transport: Transport) -> FlushResult:
    """Deliver every spooled file, oldest first; stops at the first request that cannot be
    delivered (`TransportUnavailable` propagates; the rest stays spooled)."""
    result = FlushResult()
    for path in spooled_files():
        with _locked(path) as mine:
            if not mine or not path.exists():
                result.left += 1
                continue
            for line in path.read_bytes().splitlines():
                if not line.strip():
                    continue
                try:
                    await _deliver(transport, orjson.loads(line))
                except RequestRejected as exc:
                    result.refused += 1
                    logger.warning("Baton server refused a spooled request (dropped): %s", exc)
                result.requests += 1
            path.unlink(missing_ok=True)
            result.files += 1
    return result
