"""`concurrency()` and `rate_limit()` in real processes against the live server (issue 16,
point 10): racing processes never exceed a limit, a killed holder's slots come back, a rate
limit spaces calls, and a name with no limit behaves as documented."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from ...support.waiting import eventually
from .conftest import Limits, intervals, limit_name, most_at_once

RACE = """
    import asyncio, json, os, sys, time
    from baton import ThreadPoolTaskRunner, concurrency, flow, task

    LOG, FIRST = sys.argv[1], int(sys.argv[2])

    def record(i, start, end):
        with open(LOG, "a") as f:
            f.write(json.dumps({"i": i, "pid": os.getpid(), "start": start, "end": end}) + "\\n")

    @task
    def hold(i: int) -> int:
        with concurrency("$limit", occupy=1):
            start = time.time()
            time.sleep(0.05)
            end = time.time()
        record(i, start, end)
        return i

    @task
    async def ahold(i: int) -> int:
        async with concurrency("$limit"):
            start = time.time()
            await asyncio.sleep(0.05)
            end = time.time()
        record(i, start, end)
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=25))
    def race_sync() -> list[int]:
        return [f.result() for f in [hold.submit(i) for i in range(FIRST, FIRST + 25)]]

    @flow
    async def race_async() -> list[int]:
        return list(await asyncio.gather(*(ahold(i) for i in range(FIRST, FIRST + 25))))

    done = race_sync() if sys.argv[3] == "sync" else asyncio.run(race_async())
    print(json.dumps(done))
"""


@pytest.mark.timeout(180)
async def test_fifty_tasks_in_two_processes_never_exceed_a_limit_of_three(limits: Limits) -> None:
    name = await limits.create(3)
    script = limits.write(RACE, "race.py", limit=name)
    log = limits.workdir / "holders.jsonl"
    async with limits.sample(name) as sampler:
        sync, async_ = await asyncio.gather(
            limits.python(script, str(log), "0", "sync", timeout=150),
            limits.python(script, str(log), "25", "async", timeout=150),
        )
    for finished in (sync, async_):
        finished.check()
    assert sorted(json.loads(sync.stdout) + json.loads(async_.stdout)) == list(range(50))
    spans = intervals(log)
    assert len(spans) == 50  # all 50 held a slot, and finished
    assert len(sampler.samples) > 20
    assert max(sampler.samples) <= 3, f"the database saw {max(sampler.samples)} slots held"
    assert max(sampler.samples) == 3, "the limit was never full: the race did not race"
    assert most_at_once(spans) <= 3, "more than 3 holders were inside their blocks at once"
    assert (await limits.read(name))["denied_slots"] > 0  # some did have to wait
    assert await limits.held(name) == 0  # every slot was given back


HOLDER = """
    import sys, time
    from baton import concurrency

    with concurrency("$limit", occupy=2, lease_duration=2):
        print("holding", flush=True)
        time.sleep(600)
"""

TAKER = """
    import sys, time
    from baton import concurrency

    with concurrency("$limit", occupy=2, timeout_seconds=60):
        print("taken", flush=True)
"""


@pytest.mark.timeout(120)
async def test_a_killed_holders_slots_come_back_when_its_lease_expires(limits: Limits) -> None:
    name = await limits.create(2)
    holder = await limits.start(limits.write(HOLDER, "holder.py", limit=name))
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.strip() == b"holding"
        [lease] = (await limits.read(name))["leases"]
        assert lease["slots"] == 2 and lease["holder"]["type"] == "process"

        async def renewed() -> bool:  # held past its first expiry: renewed in the background
            leases = (await limits.read(name))["leases"]
            return bool(leases) and leases[0]["id"] == lease["id"] and leases[0]["expires"] > lease["expires"]

        await eventually(renewed, timeout=20, interval=0.2, what="the lease to be renewed")
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()

    # nothing releases a dead holder's slots: they come back when its lease runs out
    async def free() -> bool:
        return await limits.held(name) == 0

    await eventually(free, timeout=30, interval=0.1, what="the dead holder's slots to come back")
    taken = await limits.python(limits.write(TAKER, "taker.py", limit=name))
    assert taken.check().stdout.strip() == "taken"


RATE = """
    import json, time
    from baton import rate_limit

    first = time.time()
    for _ in range(5):
        rate_limit("$limit")
    print(json.dumps({"first": first, "last": time.time()}))
"""


async def test_a_rate_limit_spaces_calls_by_its_slot_decay(limits: Limits) -> None:
    name = await limits.create(1, slot_decay_per_second=4.0)  # one call every 0.25 s
    finished = await limits.python(limits.write(RATE, "rate.py", limit=name))
    times = json.loads(finished.check().stdout)
    # the 5th call is granted no sooner than 4 decays (4 x 0.25 s) after the 1st was asked
    assert times["last"] - times["first"] >= 4 * 0.25 - 0.02
    limit = await limits.read(name)
    assert limit["leases"] == [] and limit["denied_slots"] > 0


MISSING = """
    import asyncio, json, logging
    from baton import (
        ConcurrencyLimitNotFound, ConcurrencySlotAcquisitionError, arate_limit, concurrency, rate_limit
    )

    seen = {}
    held = concurrency("$missing")
    with held:
        seen["ran"] = True
        try:
            with held:
                pass
        except RuntimeError as exc:
            seen["twice"] = str(exc)
    with held:  # once released, it may be held again
        pass
    try:
        with concurrency("$missing", strict=True):
            seen["strict_ran"] = True
    except ConcurrencyLimitNotFound as exc:
        seen["strict"] = str(exc)
    try:
        rate_limit("$missing", strict=True)
    except ConcurrencyLimitNotFound as exc:
        seen["rate_strict"] = str(exc)

    async def main():
        async with concurrency("$missing"):
            seen["async_ran"] = True
        try:
            await arate_limit("$missing", strict=True)
        except ConcurrencySlotAcquisitionError as exc:
            seen["async_strict"] = type(exc).__name__
        try:
            async with concurrency("$existing", occupy=3):
                pass
        except ConcurrencySlotAcquisitionError as exc:
            seen["too_many"] = str(exc)
        try:
            await arate_limit("$existing")
        except ConcurrencySlotAcquisitionError as exc:
            seen["not_a_rate_limit"] = str(exc)

    asyncio.run(main())
    print(json.dumps(seen))
"""


async def test_a_name_with_no_limit_limits_nothing_and_warns_unless_strict(limits: Limits) -> None:
    missing, existing = limit_name("none"), await limits.create(2)
    finished = await limits.python(limits.write(MISSING, "missing.py", missing=missing, existing=existing))
    seen = json.loads(finished.check().stdout)
    assert seen["ran"] is True and seen["async_ran"] is True and "strict_ran" not in seen
    assert "already held" in seen["twice"]
    assert f"no concurrency limit named {missing!r}" in seen["strict"]
    assert "baton concurrency-limit create" in seen["strict"]
    assert f"no concurrency limit named {missing!r}" in seen["rate_strict"]
    assert seen["async_strict"] == "ConcurrencyLimitNotFound"
    assert "has only 2" in seen["too_many"]
    assert "not a rate limit" in seen["not_a_rate_limit"]
    # one warning for the missing name, however often it was used
    warnings = [line for line in finished.stderr.splitlines() if "There is no concurrency limit" in line]
    assert len(warnings) == 1 and missing in warnings[0]
    assert (await limits.http.get(f"/concurrency_limits/{missing}")).status_code == 404  # none made


TIMEOUT = """
    import json, time
    from baton import ConcurrencySlotTimeout, concurrency

    seen = {}
    with concurrency("$limit"):
        try:
            with concurrency("$limit", timeout_seconds=1):
                seen["second"] = True
        except TimeoutError as exc:
            seen["timeout"] = [type(exc).__name__, str(exc)]
    print(json.dumps(seen))
"""


async def test_timeout_seconds_gives_up_with_a_timeout_error(limits: Limits) -> None:
    name = await limits.create(1)
    finished = await limits.python(limits.write(TIMEOUT, "timeout.py", limit=name))
    seen = json.loads(finished.check().stdout)
    assert "second" not in seen
    kind, message = seen["timeout"]
    assert kind == "ConcurrencySlotTimeout" and name in message and "1 second" in message
    assert await limits.held(name) == 0
