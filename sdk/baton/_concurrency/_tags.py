"""Task tag limits: a limit named `tag:{tag}` caps the task runs carrying that tag, across every
flow and process, as the reference system's task concurrency limits.

Before each attempt (its first run and every retry) a task run with tags takes one slot of
each of its tags' limits (tags with no limit, or an inactive one, take nothing). If one is full
the run goes to Scheduled, named AwaitingConcurrencySlot with a message naming the full
limits, and waits until slots come free; then it runs as usual. The slots are held under a
lease renewed while the attempt runs and given back when it ends, whatever its outcome.

Written as steps for the engine's drivers (`baton._drivers`): the requests run on the slot
keeper's loop and the steps yield their futures, so sync and async tasks share one code path.

- A limit of 0 (or fewer slots than one) can never be granted: the run fails with the reason.
- The server unreachable for `outage_grace_seconds`: the run goes on unlimited, with a warning
  (as its states go on being kept for delivery).
- No API URL configured (a process that reports over AMQP only): no tag limits apply.
- The names the server said have no limit are remembered for `NO_LIMIT_SECONDS` (5 s): a
  task run whose every tag is among them asks nothing. So tags cost a flow of many tasks one
  request per tag set every few seconds, not two per task (about 30 ms each here); a limit
  created meanwhile applies to the task runs that start after that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future
from typing import Any

from baton_schemas.concurrency import ConcurrencyHolder, SlotsAcquired, SlotsUnavailable, tag_limit_name
from baton_schemas.limits import NAME_MAX

from .._exceptions import CancelledRun
from .._settings import ClientSettings
from .._transport import TransportUnavailable
from ._slots import Lease, SlotKeeper, keeper

log = logging.getLogger("baton.concurrency")
MAX_NAMES = 100  # the most one request for slots may name
STOP_CHECK_SECONDS = 5.0  # how long the server holds one wait before the run looks at cancellation
NO_LIMIT_SECONDS = 5.0  # how long a name the server said has no limit is taken to have none

_no_limit: dict[str, float] = {}  # name -> until when (monotonic) it is known to have no limit


def _known_unlimited(names: list[str]) -> bool:
    now = time.monotonic()
    return all(_no_limit.get(name, 0.0) > now for name in names)


def _learn(answer: SlotsAcquired) -> None:
    until = time.monotonic() + NO_LIMIT_SECONDS
    for name in answer.missing:
        _no_limit[name] = until
    for name in answer.limits:
        _no_limit.pop(name, None)
    if len(_no_limit) > 10_000:  # many distinct tags: forget the stale ones
        now = time.monotonic()
        for name in [n for n, t in _no_limit.items() if t <= now]:
            del _no_limit[name]


class TagSlots:
    """The tag limits of one task run."""

    def __init__(self, slots: SlotKeeper, names: list[str], task_run_id: object, grace: float) -> None:
        self._slots = slots
        self._names = names
        self._holder = ConcurrencyHolder(type="task_run", id=str(task_run_id))
        self._grace = grace

    def take(
        self, waiting: Callable[[str], None], stopped: Callable[[], bool]
    ) -> Generator[Any, Any, Lease | None]:
        """Steps that end holding the slots; `waiting(message)` is called once if they must
        wait, and `stopped()` between the server's waits (True: give up, `CancelledRun`).
        Raises ConcurrencySlotAcquisitionError for slots that can never be granted."""
        wait = 0.0
        while True:
            taking = self._slots.submit(
                self._slots.attempt(
                    self._names,
                    1,
                    "concurrency",
                    strict=False,
                    holder=self._holder,
                    wait_seconds=wait,
                    retry_until=time.monotonic() + self._grace if not wait else None,
                )
            )
            yield taking
            try:
                answer, lease = taking.result()
            except TransportUnavailable as exc:
                log.warning("Tag concurrency limits not applied: the server is unreachable (%s)", exc)
                return None
            if isinstance(answer, SlotsAcquired):
                _learn(answer)
                return lease
            if not wait:
                waiting(_waiting_message(answer))
            elif stopped():
                raise CancelledRun("not started: its flow run is being cancelled")
            wait = STOP_CHECK_SECONDS

    def release(self, lease: Lease) -> Future[None]:
        return self._slots.submit(self._slots.release(lease))


def _waiting_message(answer: SlotsUnavailable) -> str:
    full = ", ".join(repr(name) for name in answer.limits)
    return f"Waiting for a concurrency slot of {full}"


def tag_slots(tags: Sequence[str], task_run_id: object, settings: ClientSettings) -> TagSlots | None:
    """The tag limits of a task run with these tags; None without tags or a server to ask."""
    names = [name for name in map(tag_limit_name, dict.fromkeys(tags)) if len(name) <= NAME_MAX][:MAX_NAMES]
    if not names or _known_unlimited(names):
        return None
    slots = keeper(settings)
    if slots is None:
        return None
    return TagSlots(slots, names, task_run_id, settings.outage_grace_seconds)
