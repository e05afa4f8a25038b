"""Window arithmetic: reactive thresholds, proactive silence, compound and sequence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from baton_schemas.automations import FiringKind
from baton_schemas.triggers import CompoundTrigger, SequenceTrigger
from baton_server.router.windows import (
    EMPTY,
    Fire,
    Window,
    child_fired,
    proactive_due,
    proactive_expected,
    proactive_opens,
    reactive,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASE = Fire(uuid.uuid4(), "", "k", EMPTY, (), "")


def _event(seconds: float) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "event": "e", "occurred": (T0 + timedelta(seconds=seconds)).isoformat()}


def test_reactive_fires_at_the_threshold_within_the_window_and_starts_over() -> None:
    window = Window(proactive=False)
    assert reactive(window, _event(0), threshold=3, within=10, fire=BASE) is None
    assert reactive(window, _event(5), threshold=3, within=10, fire=BASE) is None
    fired = reactive(window, _event(9), threshold=3, within=10, fire=BASE)
    assert fired is not None and len(fired.events) == 3 and fired.window_start == T0
    assert not window.open


def test_reactive_window_expires_and_late_events_do_not_count() -> None:
    window = Window(proactive=False)
    reactive(window, _event(0), threshold=2, within=10, fire=BASE)
    assert reactive(window, _event(11), threshold=2, within=10, fire=BASE) is None  # a new window
    assert window.start == T0 + timedelta(seconds=11) and window.count == 1
    assert reactive(window, _event(1), threshold=2, within=10, fire=BASE) is None  # before it: gone
    assert window.count == 1


def test_firing_keys_differ_by_window_and_event() -> None:
    a = Fire(BASE.automation_id, "", "k", T0, (), "e1")
    assert a.key == Fire(BASE.automation_id, "", "k", T0, (), "e1").key
    assert a.key != Fire(BASE.automation_id, "", "k", T0 + timedelta(seconds=1), (), "e1").key
    assert a.key != Fire(BASE.automation_id, "", "k2", T0, (), "e1").key


def test_proactive_fires_on_silence_stays_quiet_when_satisfied_and_resolves() -> None:
    quiet = Window(proactive=True)
    proactive_opens(quiet, _event(0), within=10)
    proactive_expected(quiet, _event(3), threshold=1, fire=BASE)
    assert not quiet.open  # satisfied
    silent = Window(proactive=True)
    proactive_opens(silent, _event(0), within=10)
    fired = proactive_due(silent, BASE, threshold=1, within=10)
    assert fired is not None and fired.cause == "timer" and silent.fired
    assert proactive_due(silent, BASE, threshold=1, within=10) is None  # once
    resolved = proactive_expected(silent, _event(12), threshold=1, fire=BASE)
    assert resolved is not None and resolved.kind is FiringKind.RESOLVED


def test_rolling_proactive_windows_follow_each_other() -> None:
    window = Window(proactive=True)
    window.begin(T0, 10)
    proactive_expected(window, _event(1), threshold=1, fire=BASE, rolling=True)
    assert proactive_due(window, BASE, threshold=1, within=10, rolling=True) is None
    assert window.start == T0 + timedelta(seconds=10) and window.count == 0
    assert proactive_due(window, BASE, threshold=1, within=10, rolling=True) is not None


def _child(index: int) -> Fire:
    return Fire(BASE.automation_id, str(index), "", T0, (_event(index),), f"c{index}")


def test_compound_n_of_within_a_window() -> None:
    trigger = CompoundTrigger.model_validate(
        {"require": 2, "within": 10, "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}]}
    )
    window = Window(proactive=False)
    assert child_fired(window, trigger, 0, _child(0), T0, BASE) is None
    assert child_fired(window, trigger, 0, _child(0), T0, BASE) is None  # the same child again
    assert child_fired(window, trigger, 2, _child(2), T0 + timedelta(seconds=11), BASE) is None  # too late
    assert child_fired(window, trigger, 1, _child(1), T0 + timedelta(seconds=12), BASE) is not None


def test_sequence_in_order_fires_out_of_order_does_not() -> None:
    trigger = SequenceTrigger.model_validate({"triggers": [{"expect": ["a"]}, {"expect": ["b"]}]})
    window = Window(proactive=False)
    assert child_fired(window, trigger, 1, _child(1), T0, BASE) is None  # b before a
    assert child_fired(window, trigger, 0, _child(0), T0, BASE) is None
    assert child_fired(window, trigger, 1, _child(1), T0, BASE) is not None


def test_sequence_judges_by_occurrence_not_arrival() -> None:
    """Two routers (or two batches) may count the steps in another order than they occurred."""
    trigger = SequenceTrigger.model_validate(
        {"within": 60, "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}]}
    )
    at = [T0 + timedelta(seconds=s) for s in (1, 2, 3)]
    window = Window(proactive=False)
    assert child_fired(window, trigger, 2, _child(2), at[2], BASE) is None  # c arrives first
    assert child_fired(window, trigger, 0, _child(0), at[0], BASE) is None
    fired = child_fired(window, trigger, 1, _child(1), at[1], BASE)
    assert fired is not None and fired.window_start == at[0] and not window.open
    # steps that occurred out of order, or too far apart, do not fire
    window = Window(proactive=False)
    assert child_fired(window, trigger, 1, _child(1), at[0], BASE) is None
    assert child_fired(window, trigger, 0, _child(0), at[1], BASE) is None
    assert child_fired(window, trigger, 2, _child(2), at[2], BASE) is None  # b occurred before a
    later_b = T0 + timedelta(seconds=2.5)
    assert child_fired(window, trigger, 1, _child(1), later_b, BASE) is not None  # a later b: in order
    window = Window(proactive=False)
    assert child_fired(window, trigger, 0, _child(0), T0, BASE) is None
    assert child_fired(window, trigger, 1, _child(1), T0 + timedelta(seconds=30), BASE) is None
    assert child_fired(window, trigger, 2, _child(2), T0 + timedelta(seconds=61), BASE) is None  # too late
