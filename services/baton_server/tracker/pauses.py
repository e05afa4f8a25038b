"""Pausing a flow run for input, resuming it, and failing it when its pause times out.

- A run pauses itself (`baton.pause_flow_run` in its engine, under its claim): the input schema it
  waits for is stored and the run goes Paused, keeping its claim and lease while its process
  polls; or Suspended (`suspend_flow_run`): its process ends and its worker's slot is free.
- From outside (the router's actions), a run that has not started is held Paused, and a started
  one is suspended: Suspended, and its worker told on `baton.control` to stop the process.
- Resuming checks the input against the stored schema and stores it (JSON null for none, so a
  suspended run that runs its flow again finds the pause answered and goes past it). A waiting
  process's run goes back to Running (the same attempt); a suspended or held one to Scheduled,
  dispatched at once, to any worker of its pool.
- The reaper's pass fails a paused run past its timeout (`pause_timeouts`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from baton_schemas import utcnow
from baton_schemas.envelopes import ControlKind, ControlMessage, ProposeState
from baton_schemas.pauses import PauseFlowRun, pause_details, paused_state, schema_key
from baton_schemas.states import Running, Scheduled, State, StateType, Verdict
from baton_schemas.topology import CONTROL, flow_run_control_key

from ..broker.outbox import Outbox, OutboxMessage
from ..db.deployments import parameter_errors
from ..db.types import Connection
from .transitions import Outcome, RunNotFound, propose_flow_run_state


class NotPaused(ValueError):
    """The run is not paused (a 409): nothing to resume, or it cannot be paused now."""


class InvalidInput(ValueError):
    """The input does not fit the pause's schema (a 422), one error per field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


_STORE_INPUT = """
    INSERT INTO flow_run_inputs (flow_run_id, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (flow_run_id, key) DO UPDATE SET value = EXCLUDED.value, created = now()"""


async def store_input(conn: Connection, run_id: uuid.UUID, key: str, value: Any) -> None:
    await conn.execute(_STORE_INPUT, run_id, key, orjson.Fragment(orjson.dumps(value)))


async def read_input(conn: Connection, run_id: uuid.UUID, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT key, value, created FROM flow_run_inputs WHERE flow_run_id = $1 AND key = $2", run_id, key
    )


async def pause_flow_run(
    conn: Connection, run_id: uuid.UUID, request: PauseFlowRun, *, default_lease_seconds: float
) -> Outcome:
    """The run pauses itself: its input schema stored, then Paused (or Suspended) under its claim."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM flow_runs WHERE id = $1", run_id) is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        if request.input_schema is not None:
            await store_input(conn, run_id, schema_key(request.key), request.input_schema)
        state = paused_state(
            request.key,
            timeout_seconds=request.timeout_seconds,
            reschedule=request.reschedule,
            message=request.message,
        )
        proposal = ProposeState(flow_run_id=run_id, state=state, claim_id=request.claim_id)
        return await propose_flow_run_state(conn, proposal, default_lease_seconds=default_lease_seconds)


async def hold_flow_run(
    conn: Connection,
    run_id: uuid.UUID,
    *,
    suspend: bool,
    timeout_seconds: float | None,
    reason: str,
    default_lease_seconds: float,
) -> Outcome:
    """Pause a run from outside. One that has not started is held (Paused, or Suspended with
    `suspend`) and not dispatched until resumed; a started one can only be suspended: its
    worker stops the process. NotPaused if neither applies."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT state_type, deployment_id FROM flow_runs WHERE id = $1 FOR UPDATE", run_id
        )
        if row is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        state_type = row["state_type"]
        started = state_type in (StateType.PENDING.value, StateType.RUNNING.value)
        if state_type != StateType.SCHEDULED.value and not (suspend and started):
            what = "suspended" if suspend else "paused from outside (a running flow pauses itself)"
            raise NotPaused(f"flow run {run_id} is {state_type.lower()}: it cannot be {what}")
        if started and row["deployment_id"] is None:
            raise NotPaused(f"flow run {run_id} is not a deployment's: no worker could start it again")
        state = paused_state(
            f"held-{uuid.uuid4().hex[:12]}",
            timeout_seconds=timeout_seconds,
            reschedule=True,
            message=reason,
            in_attempt=state_type == StateType.RUNNING.value,
        )
        if not suspend:
            state.name = "Paused"
        outcome = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=run_id, state=state), default_lease_seconds=default_lease_seconds
        )
        if started and outcome.result.verdict is Verdict.ACCEPT:
            control = ControlMessage(kind=ControlKind.SUSPEND, flow_run_id=run_id, reason=reason)
            message = OutboxMessage(CONTROL, flow_run_control_key(run_id), uuid.uuid4(), control.to_json())
            outcome.outbox.extend(await Outbox.add(conn, [message]))
    return outcome


def check_input(schema: dict[str, Any] | None, run_input: dict[str, Any] | None, key: str) -> None:
    """InvalidInput unless `run_input` is what the pause waits for."""
    loc = ("body", "run_input")
    if schema is None and run_input is not None:
        errors = [{"loc": list(loc), "msg": f"pause {key!r} waits for no input", "type": "extra"}]
    elif schema is not None and run_input is None:
        errors = [{"loc": list(loc), "msg": f"pause {key!r} waits for input", "type": "missing"}]
    elif schema is not None and run_input is not None:
        errors = parameter_errors(schema, run_input, loc)
    else:
        errors = []
    if errors:
        raise InvalidInput(errors)


async def resume_flow_run(
    conn: Connection,
    run_id: uuid.UUID,
    run_input: dict[str, Any] | None,
    *,
    default_lease_seconds: float,
    dispatch_within: float,
    reason: str = "resumed by a user",
    now: datetime | None = None,
) -> Outcome:
    """Resume a paused run with `run_input`: NotPaused (also once its pause has timed out: the
    reaper's next pass fails it), InvalidInput or RunNotFound if not."""
    from ..scheduler.dispatch import dispatch_runs

    async with conn.transaction():
        row = await conn.fetchrow("SELECT state FROM flow_runs WHERE id = $1 FOR UPDATE", run_id)
        if row is None:
            raise RunNotFound(f"flow run {run_id} does not exist")
        current = State.model_validate(row["state"])
        if current.type is not StateType.PAUSED:
            raise NotPaused(f"flow run {run_id} is not paused ({current.name}): nothing to resume")
        details = pause_details(current)
        if details is not None and details.timeout is not None and details.timeout <= (now or utcnow()):
            raise NotPaused(f"flow run {run_id}: its pause timed out at {details.timeout.isoformat()}")
        if details is None:  # a Paused state set by hand: nothing waits for input
            check_input(None, run_input, current.name)
        else:
            stored = await read_input(conn, run_id, schema_key(details.key))
            check_input(stored["value"] if stored is not None else None, run_input, details.key)
            await store_input(conn, run_id, details.key, run_input)
        again = details is None or details.reschedule
        if again and details is not None and details.in_attempt:
            # the attempt the suspension interrupted goes on in a new process: its Running there
            # is not one more attempt (nor a retry), as the reference system counts it
            await conn.execute(
                "UPDATE flow_runs SET run_count = run_count - 1 WHERE id = $1 AND run_count > 0", run_id
            )
        state = Scheduled(name="Resuming", message=reason) if again else Running(message=reason)
        outcome = await propose_flow_run_state(
            conn, ProposeState(flow_run_id=run_id, state=state), default_lease_seconds=default_lease_seconds
        )
        if again and outcome.result.verdict is Verdict.ACCEPT:
            outcome.outbox.extend(await dispatch_runs(conn, [run_id], within_seconds=dispatch_within))
    return outcome
