"""Pausing a flow run for input: the Paused state's details, and the bodies of pause and resume.

A pause has a key, unique in its run (`pause-1`, `pause-2`, ... by default). The JSON schema of
the input it waits for is stored under `{key}-schema`, the input it was resumed with under
`{key}` (the JSON `null` when it waited for none), in `flow_run_inputs`. A Paused state's `data`
carries the details below under `"pause"`: which pause it is, when it times out, and whether
its process keeps waiting (Paused) or ended and is started again on resume (Suspended).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel, utcnow
from .states import State, StateType

PAUSE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
INPUT_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$"  # a pause's key, or its `-schema` key
MAX_PAUSE_SECONDS = 366 * 24 * 3600.0


def schema_key(key: str) -> str:
    """Where a pause's input schema is stored."""
    return f"{key}-schema"


class PauseDetails(BatonModel):
    """What a Paused state's `data["pause"]` holds."""

    key: str
    timeout: datetime | None = Field(
        default=None, description="When the pause fails the run; never if unset."
    )
    reschedule: bool = Field(
        default=False,
        description="Suspended: the process ended; on resume the run is scheduled and started again.",
    )
    in_attempt: bool = Field(
        default=True,
        description="Paused while Running: resumed, the same attempt goes on (counted once).",
    )


def paused_state(
    key: str,
    *,
    timeout_seconds: float | None,
    reschedule: bool,
    message: str | None = None,
    in_attempt: bool = True,
) -> State:
    """A Paused (or, with `reschedule`, Suspended) state for pause `key`."""
    timeout = utcnow() + timedelta(seconds=timeout_seconds) if timeout_seconds is not None else None
    details = PauseDetails(key=key, timeout=timeout, reschedule=reschedule, in_attempt=in_attempt)
    return State(
        type=StateType.PAUSED,
        name="Suspended" if reschedule else "Paused",
        message=message,
        data={"pause": details.model_dump(mode="json")},
    )


def pause_details(state: State) -> PauseDetails | None:
    """The details of a Paused state; None for any other (or a Paused one made without them)."""
    if state.type is not StateType.PAUSED or not isinstance(state.data, dict):
        return None
    raw = state.data.get("pause")
    return PauseDetails.model_validate(raw) if isinstance(raw, dict) else None


def keeps_owner(state: State) -> bool:
    """A Paused run whose process waits keeps its claim and lease; a Suspended one has neither."""
    details = pause_details(state)
    return details is not None and not details.reschedule


class PauseFlowRun(ClientModel):
    """`POST /api/flow_runs/{id}/pause`: a run pauses itself (its engine, under its claim)."""

    key: str = Field(pattern=PAUSE_KEY_PATTERN)
    timeout_seconds: float | None = Field(default=3600.0, gt=0, le=MAX_PAUSE_SECONDS)
    reschedule: bool = False
    input_schema: dict[str, Any] | None = Field(
        default=None, description="The JSON schema the input given on resume must fit."
    )
    claim_id: UUID | None = None
    message: str | None = Field(default=None, max_length=1000)


class SuspendFlowRun(ClientModel):
    """`POST /api/flow_runs/{id}/suspend`: a deployment's run suspended from outside. One that
    has not started is held; a started one's worker stops its process. Resume starts it again."""

    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_PAUSE_SECONDS)
    reason: str | None = Field(default=None, max_length=1000)


class ResumeFlowRun(ClientModel):
    """`POST /api/flow_runs/{id}/resume`."""

    run_input: dict[str, Any] | None = Field(
        default=None, description="The input the pause waits for, checked against its schema."
    )


class FlowRunInput(BatonModel):
    """`GET /api/flow_runs/{id}/inputs/{key}`."""

    key: str
    value: Any = None
    created: datetime
