"""State changes as events, built on the tracker's hot path without the model: held to it."""

from __future__ import annotations

import uuid

from baton_schemas.events import Event
from baton_schemas.states import Pending, Running, State, StateType
from baton_server.events.state_events import TaskRunEvents, flow_run_event, state_word

RUN = {
    "id": uuid.uuid4(),
    "name": "brave-otter",
    "flow_id": uuid.uuid4(),
    "flow_name": "etl",
    "deployment_id": uuid.uuid4(),
    "work_pool_name": "local",
    "work_queue_name": "default",
    "parent_flow_run_id": uuid.uuid4(),
    "parent_task_run_id": None,
    "tags": ["nightly", "team-data"],
}


def test_a_transition_is_an_event_with_its_run_related_resources_and_the_previous_state() -> None:
    previous, state = Pending(), Running()
    message = flow_run_event(RUN, state, version=3, previous=previous)
    event = Event.model_validate_json(message.body)
    assert (message.exchange, message.routing_key, message.message_id) == (
        "baton.events",
        event.event,
        state.id,
    )
    assert event.event == "baton.flow-run.Running"
    assert event.id == state.id and event.follows == previous.id
    assert event.resource == {
        "baton.resource.id": f"baton.flow-run.{RUN['id']}",
        "baton.resource.name": "brave-otter",
        "baton.state-type": "RUNNING",
        "baton.state-name": "Running",
    }
    roles = {r["baton.resource.role"]: r["baton.resource.id"] for r in event.related}
    assert roles == {
        "flow": f"baton.flow.{RUN['flow_id']}",
        "deployment": f"baton.deployment.{RUN['deployment_id']}",
        "work-pool": "baton.work-pool.local",
        "work-queue": "baton.work-queue.local.default",
        "parent-flow-run": f"baton.flow-run.{RUN['parent_flow_run_id']}",
        "tag": "baton.tag.team-data",  # one per tag (the dict keeps the last)
    }
    assert [r["baton.resource.id"] for r in event.related if r["baton.resource.role"] == "tag"] == [
        "baton.tag.nightly",
        "baton.tag.team-data",
    ]
    assert event.payload["intended"] == {"from": "PENDING", "to": "RUNNING"}
    assert event.payload["state_version"] == 3


def test_a_first_state_follows_nothing_and_odd_state_names_make_valid_event_names() -> None:
    state = State(type=StateType.SCHEDULED, name="Waiting for. the *thing*")
    event = Event.model_validate_json(flow_run_event(RUN, state, version=1, previous=None).body)
    assert event.follows is None
    assert event.event == f"baton.flow-run.{state_word(state.name)}" == "baton.flow-run.Waiting-for-the-thing"


def test_task_run_events() -> None:
    task_run_id, state = uuid.uuid4(), Running()
    message = TaskRunEvents(RUN).message(task_run_id, "extract-0", ["io"], state, version=2, previous=None)
    event = Event.model_validate_json(message.body)
    assert event.event == "baton.task-run.Running"
    assert event.resource["baton.resource.id"] == f"baton.task-run.{task_run_id}"
    assert {r["baton.resource.role"] for r in event.related} == {"flow-run", "flow", "deployment", "tag"}
