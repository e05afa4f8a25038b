"""What a worker hands to a flow run's process (the dispatch, the claim, where to start), and
what the process's exit code says back.

It travels as JSON in an anonymous memory file (`memfd`) whose descriptor the process
inherits (`BATON_JOB_FD`), so neither its size nor its secrets touch the command line, the
environment or the disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

JOB_FD_ENV = "BATON_JOB_FD"
CONSOLE_FD_ENV = "BATON_CONSOLE_FD"
FLOW_RUN_ID_ENV = "BATON_FLOW_RUN_ID"

# What the run's exit code tells the worker is left to do:
EXIT_REPORTED = 0  # nothing: the server has the run's outcome (or a retry it dispatches again)
EXIT_UNREPORTED = 1  # end the run Crashed (any code but these, too)
EXIT_ABORTED = 3  # nothing: the server said the run is no longer this worker's


@dataclass(frozen=True, slots=True)
class RunJob:
    dispatch: dict[str, Any]  # a FlowRunDispatch, as JSON
    claim_id: UUID
    claimed_version: int  # the run's state_version once claimed (Pending)
    worker_id: str
    # Set for a process that only runs the flow's hooks for this state (a run the worker ended
    # Crashed or Cancelled: its own process could not run them).
    hooks_state: dict[str, Any] | None = None

    @property
    def flow_run_id(self) -> str:
        return str(self.dispatch["flow_run_id"])

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "dispatch": self.dispatch,
                "claim_id": str(self.claim_id),
                "claimed_version": self.claimed_version,
                "worker_id": self.worker_id,
                "hooks_state": self.hooks_state,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> RunJob:
        raw = orjson.loads(data)
        return cls(
            dispatch=raw["dispatch"],
            claim_id=UUID(raw["claim_id"]),
            claimed_version=int(raw["claimed_version"]),
            worker_id=str(raw["worker_id"]),
            hooks_state=raw.get("hooks_state"),
        )

    def to_fd(self) -> int:
        """A read-only-at-offset-0 memory file holding the job; the caller closes it."""
        fd = os.memfd_create("baton-job", 0)  # inheritable only where passed on purpose
        data = self.to_json()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        return fd


def read_job_fd(fd: int) -> RunJob:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return RunJob.from_json(b"".join(chunks))
