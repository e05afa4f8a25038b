"""Pausing for input, the pure parts: a Paused state's details, who keeps a lease, and how a
resume's input is checked (one error per field, located under `run_input`)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from baton_schemas import utcnow
from baton_schemas.pauses import keeps_owner, pause_details, paused_state
from baton_schemas.states import Paused, Running, Suspended
from baton_server.tracker.pauses import InvalidInput, check_input


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as RunInput

    approved: bool
    note: str = ""


def test_a_paused_state_carries_its_pause_and_only_a_waiting_process_keeps_its_owner() -> None:
    before = utcnow()
    waiting = paused_state("pause-1", timeout_seconds=60, reschedule=False)
    suspended = paused_state("pause-2", timeout_seconds=None, reschedule=True, in_attempt=False)
    assert (waiting.name, suspended.name) == ("Paused", "Suspended")
    details = pause_details(waiting)
    assert details is not None and details.key == "pause-1" and not details.reschedule
    assert details.timeout is not None and before + timedelta(seconds=59) < details.timeout
    later = pause_details(suspended)
    assert later is not None and later.timeout is None and later.in_attempt is False
    assert keeps_owner(waiting) and not keeps_owner(suspended)
    # states made by hand carry no pause: nobody waits on them
    assert pause_details(Paused()) is None and pause_details(Running()) is None
    assert not keeps_owner(Suspended())


def _errors(schema: dict[str, Any] | None, run_input: dict[str, Any] | None) -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        check_input(schema, run_input, "pause-1")
    return caught.value.errors


def test_the_input_is_checked_against_the_schema_the_pause_stored() -> None:
    schema = Approval.model_json_schema()
    check_input(schema, {"approved": True}, "pause-1")
    check_input(None, None, "pause-1")
    [wrong] = _errors(schema, {"approved": "maybe"})
    assert (
        wrong["loc"] == ["body", "run_input", "approved"]
        and "'maybe' is not of type 'boolean'" in wrong["msg"]
    )
    [empty] = _errors(schema, {})
    assert empty["loc"] == ["body", "run_input", "approved"]
    [missing] = _errors(schema, {"note": "x"})
    assert missing["loc"] == ["body", "run_input", "approved"] and missing["type"] == "required"
    [extra] = _errors(schema, {"approved": True, "colour": "red"})
    assert extra["loc"] == ["body", "run_input", "colour"]
    assert _errors(schema, None)[0]["msg"] == "pause 'pause-1' waits for input"
    assert _errors(None, {"approved": True})[0]["msg"] == "pause 'pause-1' waits for no input"


def test_a_tracker_process_fails_timed_out_pauses_without_loading_what_resuming_needs() -> None:
    probe = (
        "import sys, baton_server.server, baton_server.tracker.service;"
        "print(' '.join(m for m in ('jsonschema', 'jinja2', 'fastapi') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
