"""The engine's unvalidated states are indistinguishable from validated ones."""

from __future__ import annotations

from uuid import uuid4

from baton._fast_states import completed, fast_state, pending, running
from baton_schemas.envelopes import TaskRunStateReport
from baton_schemas.runs import TaskRunInfo
from baton_schemas.states import Completed, Pending, Running, State, StateType


def test_fast_states_match_validated_states() -> None:
    for fast, slow in ((pending(), Pending()), (running(), Running()), (completed(1), Completed())):
        assert type(fast) is State
        dumped, expected = fast.model_dump(), slow.model_dump()
        for volatile in ("id", "timestamp"):
            assert type(dumped.pop(volatile)) is type(expected.pop(volatile))
        assert dumped == expected
        assert State.model_validate_json(fast.model_dump_json()).model_dump() == fast.model_dump()
        assert fast.model_fields_set == slow.model_fields_set | {
            "id",
            "timestamp",
            "message",
            "data",
            "scheduled_time",
        }


def test_fast_states_work_inside_other_models_and_copies() -> None:
    state = completed({"value": 1})
    assert state.result() == {"value": 1} and state.is_completed() and state.is_terminal
    copy = state.model_copy(update={"message": "copied"})
    assert copy.message == "copied" and copy.id == state.id
    info = TaskRunInfo(id=uuid4(), flow_run_id=uuid4(), name="t-0", task_key="t")
    report = TaskRunStateReport(task_run=info, state=state, version=1)
    assert TaskRunStateReport.model_validate_json(report.to_json()).state.id == state.id
    failed = fast_state(StateType.FAILED, "Failed", message="boom")
    assert str(failed) == "Failed (boom)"
