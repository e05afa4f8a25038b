"""State's own post-validation step does what pydantic's generic one would."""

from __future__ import annotations

from uuid import uuid4

from baton_schemas.envelopes import TaskRunStateReport
from baton_schemas.runs import TaskRunInfo
from baton_schemas.states import State, StateType


def _private_defaults() -> dict[str, object]:
    return {name: attr.get_default() for name, attr in State.__private_attributes__.items()}


def test_every_way_of_validating_a_state_sets_its_private_defaults_and_default_name() -> None:
    info = TaskRunInfo(id=uuid4(), flow_run_id=uuid4(), name="t", task_key="t")
    nested = TaskRunStateReport(task_run=info, state=State(type=StateType.RUNNING), version=1)
    for state in (
        State(type=StateType.PENDING),
        State.model_validate({"type": "PENDING"}),
        State.model_validate_json(b'{"type": "PENDING"}'),
        TaskRunStateReport.model_validate_json(nested.to_json()).state,
    ):
        assert state.__pydantic_private__ == _private_defaults()
        assert state.name == state.type.value.capitalize()
        assert "name" in state.model_fields_set


def test_a_given_name_is_kept_and_results_travel_with_copies() -> None:
    state = State.model_validate({"type": "COMPLETED", "name": "Cached"})
    assert state.name == "Cached"
    state.with_result(42)
    assert state.result() == 42
    assert state.model_copy().result() == 42
    assert state.model_dump()["name"] == "Cached"
