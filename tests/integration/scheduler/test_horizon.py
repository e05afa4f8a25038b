"""Runs made ahead of time: the horizon, the idempotency key, merged parameters."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from baton_schemas import utcnow
from baton_server.context import ServerContext
from baton_server.scheduler.horizon import Horizon, plan_slots
from baton_server.scheduler.service import SchedulerService

from .helpers import deploy, runs_of


async def test_a_schedule_gets_its_horizon_of_runs_each_once(ctx: ServerContext) -> None:
    deployment = await deploy(
        ctx,
        [{"schedule": {"kind": "interval", "interval_seconds": 3600}, "parameters": {"b": 2}}],
        parameters={"a": 1, "b": 1},
    )
    first, second = SchedulerService(ctx), SchedulerService(ctx)
    await first.run_pass()
    await second.run_pass()
    await first.run_pass()
    runs = await runs_of(ctx, deployment)
    now = utcnow()
    assert len(runs) == ctx.settings.scheduler_min_runs == 3
    slots = [r["schedule_slot"] for r in runs]
    assert all(slot > now - timedelta(seconds=5) for slot in slots)
    assert [b - a for a, b in itertools.pairwise(slots)] == [timedelta(hours=1)] * 2
    for run in runs:
        assert run["idempotency_key"] == f"schedule:{run['schedule_id']}:{run['schedule_slot'].isoformat()}"
        assert run["parameters"] == {"a": 1, "b": 2}
        assert run["auto_scheduled"] and run["state_name"] == "Scheduled"
        assert run["next_scheduled_time"] == run["schedule_slot"]


def test_plan_keeps_min_runs_or_min_ahead_and_caps() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def every(step: timedelta):  # type: ignore[no-untyped-def]
        def slots(after: datetime):  # type: ignore[no-untyped-def]
            t = now + step * ((after - now) // step + 1)
            while True:
                yield t
                t += step

        return slots

    horizon = Horizon(min_runs=3, min_ahead=timedelta(minutes=10), max_runs=5)
    hourly = plan_slots(
        every(timedelta(hours=1)),
        now=now,
        filled_until=None,
        catchup_window=timedelta(hours=1),
        horizon=horizon,
    )
    assert len(hourly.slots) == 3 and hourly.next_fill == now + timedelta(hours=1)
    minutely = plan_slots(
        every(timedelta(minutes=1)),
        now=now,
        filled_until=None,
        catchup_window=timedelta(hours=1),
        horizon=horizon,
    )
    assert len(minutely.slots) == 5  # ten minutes ahead would be ten: capped at max_runs
    capped = plan_slots(
        every(timedelta(hours=1)),
        now=now,
        filled_until=None,
        catchup_window=timedelta(hours=1),
        horizon=horizon,
        cap=2,
    )
    assert len(capped.slots) == 2
    # later, one slot passed: one more is made after the last one made
    later = now + timedelta(hours=1, minutes=1)
    topped = plan_slots(
        every(timedelta(hours=1)),
        now=later,
        filled_until=hourly.filled_until,
        catchup_window=timedelta(hours=1),
        horizon=horizon,
    )
    assert topped.slots == [now + timedelta(hours=4)]
    # down for five hours: the missed slots within the window are made, then the future ones
    back = now + timedelta(hours=8, minutes=30)
    missed = plan_slots(
        every(timedelta(hours=1)),
        now=back,
        filled_until=hourly.filled_until,
        catchup_window=timedelta(hours=2),
        horizon=horizon,
    )
    assert missed.slots[:2] == [now + timedelta(hours=7), now + timedelta(hours=8)]
    assert len(missed.slots) == 5
