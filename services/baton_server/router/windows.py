"""Trigger windows: the arithmetic of counting events and children, pure (buckets.py stores it).

Windows count by each event's `occurred`:

- Reactive: a window opens at the first counted event and lasts `within` seconds (0: no limit).
  An event that occurred inside it counts, in whatever order events arrive; one that occurred
  after its end opens the next window; one that occurred before its start belongs to a window
  already gone and does not count. The `threshold`-th event fires the trigger, and the window
  starts over.
- Proactive: an `after` event opens a window of `within` seconds (with no `after`, a window
  follows the previous one). Expected events that occurred inside it count; `threshold` of them
  close it quietly. If fewer arrived, it fires once the window is over plus the late-arrival
  allowance, and the next expected event resolves it.
- Compound: a child's firing is recorded at its time; the parent fires when enough children
  fired within its window.
- Sequence: the latest firing of each step is kept with its time; the parent fires when those
  occurred in order (by `occurred`, not by arrival) within its window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from baton_schemas.automations import FiringKind
from baton_schemas.triggers import CompoundTrigger, SequenceTrigger

EMPTY = datetime(1970, 1, 1, tzinfo=UTC)  # a window not open (a row locked before it opens)
NO_END = datetime(9999, 1, 1, tzinfo=UTC)
MAX_KEPT_EVENTS = 20  # events a window keeps for the actions' templates


@dataclass(slots=True)
class Window:
    proactive: bool
    start: datetime = EMPTY
    end: datetime = EMPTY
    count: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, Any] = field(default_factory=dict)
    fired: bool = False

    @property
    def open(self) -> bool:
        return self.start != EMPTY

    @property
    def kept(self) -> bool:
        """Worth storing: open, or holding expected events that came before their window."""
        return self.open or bool(self.events)

    def clear(self) -> None:
        self.start = self.end = EMPTY
        self.count = 0
        self.events = []
        self.children = {}
        self.fired = False

    def begin(self, at: datetime, within: float) -> None:
        self.clear()
        self.start = at
        self.end = at + timedelta(seconds=within) if within > 0 else NO_END

    def keep(self, event: dict[str, Any]) -> None:
        if len(self.events) < MAX_KEPT_EVENTS:
            self.events.append(event)
        else:
            self.events[-1] = event  # the first ones and the latest


@dataclass(frozen=True, slots=True)
class Fire:
    """A trigger fired (or resolved): what the firing record and the actions are made from."""

    automation_id: UUID
    path: str
    bucket_key: str
    window_start: datetime
    events: tuple[dict[str, Any], ...]
    cause: str  # the event id that made it fire, or "timer"
    kind: FiringKind = FiringKind.TRIGGERED

    @property
    def key(self) -> str:
        """The idempotency key: automation, trigger, bucket and window, and the causing event."""
        text = "|".join(
            (
                str(self.automation_id),
                self.path,
                self.bucket_key,
                self.window_start.isoformat(),
                self.cause,
                self.kind.value,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    @property
    def event(self) -> dict[str, Any] | None:
        return self.events[-1] if self.events else None


def occurred(event: dict[str, Any]) -> datetime:
    value = event["occurred"]
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def reactive(
    window: Window, event: dict[str, Any], *, threshold: int, within: float, fire: Fire, late: float = 0.0
) -> Fire | None:
    """Count `event`; a Fire (from `fire`'s identity) if it reaches the threshold. An event that
    occurred up to `late` seconds before the window opened (it lost a race with a later one)
    still counts in it."""
    at = occurred(event)
    if not window.open or at >= window.end:
        window.begin(at, within)
    elif at < window.start - timedelta(seconds=late):
        return None  # its window is gone
    window.count += 1
    window.keep(event)
    if window.count < threshold:
        return None
    fired = Fire(
        fire.automation_id, fire.path, fire.bucket_key, window.start, tuple(window.events), str(event["id"])
    )
    window.clear()
    return fired


def proactive_opens(window: Window, event: dict[str, Any], *, within: float, threshold: int = 1) -> None:
    """An `after` event opens a window, unless one is open and not yet over. Expected events
    that arrived before it (they lost a race with it) and occurred inside it count."""
    at = occurred(event)
    if window.open and not window.fired and at < window.end:
        return
    early = [] if window.open else window.events
    window.begin(at, within)
    window.keep(event)
    window.count = sum(1 for e in early if window.start <= occurred(e) < window.end)
    if window.count >= threshold:
        window.clear()


def proactive_expected(
    window: Window, event: dict[str, Any], *, threshold: int, fire: Fire, rolling: bool = False
) -> Fire | None:
    """Count an expected event; a resolving Fire if the window had fired. A rolling window (no
    `after`) only counts: it is judged when it ends."""
    if not window.open:
        if not rolling:  # kept until its `after` event comes (or the sweep drops it)
            window.keep(event)
        return None
    at = occurred(event)
    if rolling:
        if window.start <= at < window.end:
            window.count += 1
        return None
    if window.fired:
        resolved = Fire(
            fire.automation_id,
            fire.path,
            fire.bucket_key,
            window.start,
            (*window.events[:1], event),
            str(event["id"]),
            FiringKind.RESOLVED,
        )
        window.clear()
        return resolved
    if not window.start <= at < window.end:
        return None
    window.count += 1
    if window.count >= threshold:
        window.clear()  # satisfied: nothing to do
    return None


def proactive_due(
    window: Window, fire: Fire, *, threshold: int, within: float, rolling: bool = False
) -> Fire | None:
    """The window is over (and its allowance passed): a Fire if too few events came. A rolling
    window is followed by the next one; another waits, fired, for the event that resolves it."""
    if not window.open or window.fired:
        return None
    fired = None
    if window.count < threshold:
        fired = Fire(
            fire.automation_id, fire.path, fire.bucket_key, window.start, tuple(window.events), "timer"
        )
    if rolling:
        window.begin(window.end, within)
    elif fired is None:
        window.clear()
    else:
        window.fired = True
    return fired


def child_fired(
    window: Window,
    trigger: CompoundTrigger | SequenceTrigger,
    child: int,
    child_fire: Fire,
    at: datetime,
    parent: Fire,
) -> Fire | None:
    """A child trigger fired at `at`: a Fire of the parent if that completes it."""
    if isinstance(trigger, SequenceTrigger):
        return _step(window, trigger, child, child_fire, at, parent)
    if window.open and at >= window.end:
        window.clear()
    if not window.open:
        window.begin(at, trigger.within)
    window.children[str(child)] = {"at": at.isoformat(), "event": child_fire.event}
    if child_fire.event is not None:
        window.keep(child_fire.event)
    if len(window.children) < trigger.needed():
        return None
    fired = Fire(
        parent.automation_id,
        parent.path,
        parent.bucket_key,
        window.start,
        tuple(window.events),
        child_fire.cause,
    )
    window.clear()
    return fired


def _step(
    window: Window, trigger: SequenceTrigger, child: int, child_fire: Fire, at: datetime, parent: Fire
) -> Fire | None:
    """A sequence keeps the latest firing of each step, with when it occurred (and, to break
    ties, in what order it was counted), and fires when the steps' latest firings occurred in
    order within its window. Judged by occurrence, not by arrival: routers that count steps
    in another order (two batches at once, two replicas) reach the same answer."""
    if not window.open:
        window.start, window.end = at, NO_END  # kept while steps wait for the others
    window.count += 1
    window.children[str(child)] = {"at": at.isoformat(), "n": window.count, "event": child_fire.event}
    steps = [window.children.get(str(i)) for i in range(len(trigger.triggers))]
    if any(s is None for s in steps):
        return None
    times = [(datetime.fromisoformat(s["at"]), s["n"]) for s in steps if s is not None]
    if times != sorted(times):
        return None  # out of order: a later first step, or a step before the one it follows
    if trigger.within and times[-1][0] - times[0][0] > timedelta(seconds=trigger.within):
        return None
    events = tuple(s["event"] for s in steps if s is not None and s["event"] is not None)
    fired = Fire(parent.automation_id, parent.path, parent.bucket_key, times[0][0], events, child_fire.cause)
    window.clear()
    return fired
