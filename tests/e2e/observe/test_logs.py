"""With BATON_LOG_FORMAT=json every line a Baton process writes is a JSON object: the server's
(its services', uvicorn's), the worker's and its runs' processes', with run ids as fields."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ...support.processes import BATON
from .conftest import Stack, wait_until

FIELDS = {"time", "level", "logger", "message", "process", "pid"}


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each parsed as JSON (a line that is not fails the test)."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line!r}") from exc
        assert isinstance(record, dict), line
        assert FIELDS <= record.keys(), record
        out.append(record)
    return out


def test_every_line_of_the_server_and_the_worker_is_json(stack: Stack) -> None:
    deployment = stack.deployment("flows.py:doubled")
    run_id = stack.run(deployment)["id"]
    assert stack.wait_final(run_id) == "COMPLETED"

    def worker_saw_the_end() -> list[dict[str, Any]] | None:
        found = records(stack.worker_log)
        ended = [r for r in found if r.get("flow_run_id") == run_id and "process exited" in r["message"]]
        return found if ended else None

    worker = wait_until(worker_saw_the_end, what="the worker to log the run's end")
    server = records(stack.server.log_path)

    # the server: its own records, and uvicorn's in the same format
    assert {r["process"] for r in server} == {"server"}
    assert any(r["logger"] == "baton.server" and "baton server running" in r["message"] for r in server)
    assert any(r["logger"].startswith("uvicorn") for r in server), {r["logger"] for r in server}

    # the worker: its records about the run carry the run's id as a field
    mine = [r for r in worker if r.get("flow_run_id") == run_id]
    assert any(r["process"] == "worker" and r["message"].startswith("Claimed flow run") for r in mine), mine
    # ...and so do those of the run's own process (its engine), echoed on the worker's output
    engine = [r for r in mine if r["process"] == "flow-run"]
    assert any("Finished in state Completed()" in r["message"] for r in engine), mine
    tasks = [r for r in worker if r.get("task_run_id") and r.get("flow_run_id") == run_id]
    assert tasks, "no task run's record carried its ids"


def test_an_unknown_log_format_is_refused_readably(stack: Stack) -> None:
    env = {"BATON_LOG_FORMAT": "yaml", "BATON_API_URL": stack.server.api_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([BATON, "worker", "start", "--pool", "x"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "BATON_LOG_FORMAT must be 'text' or 'json', not 'yaml'" in done.stderr
    assert "Traceback" not in done.stderr
