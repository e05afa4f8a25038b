"""The SDK's side of pausing: models for `wait_for_input`, and what is refused before any
request (outside a flow; suspending a run no worker could start again)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton import MissingContextError, RunInput, flow, pause_flow_run, suspend_flow_run, task
from baton._exceptions import BatonError
from baton._pauses import _model_of, _validated


class Approval(RunInput):
    approved: bool
    note: str = ""


def test_wait_for_input_takes_a_model_or_a_plain_type() -> None:
    model, wraps = _model_of(Approval)
    assert model is Approval and not wraps
    assert _validated(model, wraps, {"approved": True}) == Approval(approved=True)
    number, wraps = _model_of(int)
    assert wraps and number is not None
    assert number.model_json_schema()["properties"]["value"]["type"] == "integer"
    assert _validated(number, wraps, {"value": 3}) == 3
    with pytest.raises(ValidationError):
        _validated(number, wraps, {"value": "three"})
    assert _model_of(None) == (None, False)
    prefilled = Approval.with_initial_data(approved=True, note="looks fine")
    assert prefilled.model_validate({}).model_dump() == {"approved": True, "note": "looks fine"}


def test_pausing_outside_a_flow_or_suspending_an_ad_hoc_run_is_refused() -> None:
    with pytest.raises(MissingContextError, match=r"pause_flow_run\(\) must be called inside a flow run"):
        pause_flow_run()

    @flow
    def ad_hoc() -> None:
        suspend_flow_run()

    with pytest.raises(BatonError, match="is not a deployment's, so no worker could start it again"):
        ad_hoc()


def test_a_task_cannot_pause_its_flow_run() -> None:
    @task
    def inside() -> None:
        pause_flow_run()

    @flow
    def outer() -> None:
        inside()

    with pytest.raises(BatonError, match=r"call it in the flow, not in one of its tasks"):
        outer()
