"""Task tag limits (issue 16, point 10): a limit named `tag:{tag}` caps the task runs carrying
the tag across flows and processes; a task over the limit waits in AwaitingConcurrencySlot,
shown in its states, and then runs."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from baton_schemas.runs import FlowRun
from baton_schemas.states import StateType

from ..conftest import LiveServer
from ..sdk.conftest import Api, wait_for
from .conftest import Limits, intervals, most_at_once

TAGGED = """
    import asyncio, json, os, sys, time
    from baton import ThreadPoolTaskRunner, flow, task

    LOG, KIND = sys.argv[1], sys.argv[2]

    def record(start, end):
        with open(LOG, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "start": start, "end": end}) + "\\n")

    @task(tags=["$tag", "no-limit-$tag"])
    def load(i: int) -> int:
        start = time.time()
        time.sleep(0.1)
        record(start, time.time())
        return i

    @task(tags=["$tag"])
    async def aload(i: int) -> int:
        start = time.time()
        await asyncio.sleep(0.1)
        record(start, time.time())
        return i

    @task(tags=["$closed"])
    def never(i: int) -> int:
        return i

    @flow(name="$flow-sync", task_runner=ThreadPoolTaskRunner(max_workers=8))
    def tagged_sync() -> int:
        never.submit(0).wait()
        return sum(f.result() for f in [load.submit(i) for i in range(8)])

    @flow(name="$flow-async")
    async def tagged_async() -> int:
        return sum(await asyncio.gather(*(aload(i) for i in range(8))))

    print(json.dumps(tagged_sync() if KIND == "sync" else asyncio.run(tagged_async())))
"""


@pytest.mark.timeout(150)
async def test_a_tag_limit_caps_task_runs_across_processes_and_the_wait_shows(
    limits: Limits, live_server: LiveServer
) -> None:
    tag = f"warehouse-{uuid.uuid4().hex[:8]}"
    name = await limits.create(2, name=f"tag:{tag}")
    closed = await limits.create(0, name=f"tag:closed-{tag}")
    flow = f"tagged-{uuid.uuid4().hex[:8]}"
    script = limits.write(TAGGED, "tagged.py", tag=tag, closed=closed.removeprefix("tag:"), flow=flow)
    log = limits.workdir / "holders.jsonl"
    amqp = live_server.client_env(amqp=True, BATON_HOME=str(limits.workdir / "home"))
    async with limits.sample(name) as sampler:
        sync, async_ = await asyncio.gather(
            limits.python(script, str(log), "sync", timeout=120),
            limits.python(script, str(log), "async", timeout=120, env=amqp),  # reports over AMQP
        )
    assert json.loads(sync.check().stdout) == sum(range(8))
    assert json.loads(async_.check().stdout) == sum(range(8))
    spans = intervals(log)
    assert len(spans) == 16
    assert most_at_once(spans) <= 2, "more than 2 task runs with the tag ran at once"
    assert max(sampler.samples) <= 2 and max(sampler.samples) == 2
    assert await limits.held(name) == 0

    api = Api(limits.http)
    waited = []
    for flow_name, task_runs in ((f"{flow}-sync", 9), (f"{flow}-async", 8)):
        [run] = await api.settled_runs(flow_name, task_runs=task_runs, timeout=30)
        for task_run in await api.task_runs(run.id):
            states = await api.task_run_states(task_run.id)
            names = [state.name for state in states]
            if task_run.name.startswith("never"):
                assert states[-1].type is StateType.FAILED
                assert "has only 0" in (states[-1].message or "")
                continue
            assert names[-1] == "Completed"
            if "AwaitingConcurrencySlot" in names:
                awaiting = states[names.index("AwaitingConcurrencySlot")]
                assert awaiting.type is StateType.SCHEDULED
                assert f"'tag:{tag}'" in (awaiting.message or "")
                assert names[names.index("AwaitingConcurrencySlot") + 1] == "Running"
                waited.append(task_run.id)
    assert waited, "no task run waited for a slot: the limit was never met"


WAITER = """
    from baton import flow, task

    @task(tags=["$tag"])
    def load() -> int:
        return 1

    @flow(name="$flow")
    def waits() -> int:
        return load()

    waits()
"""


@pytest.mark.timeout(90)
async def test_a_task_waiting_for_a_tag_slot_ends_cancelled_when_its_flow_run_is_cancelled(
    limits: Limits,
) -> None:
    tag = f"busy-{uuid.uuid4().hex[:8]}"
    name = await limits.create(1, name=f"tag:{tag}")
    taken = await limits.http.post(
        "/concurrency_limits/acquire", json={"names": [name], "lease_seconds": 300}
    )
    assert taken.status_code == 200 and taken.json()["lease_id"] is not None  # the one slot, held
    flow = f"waits-{uuid.uuid4().hex[:8]}"
    script = limits.write(WAITER, "waiter.py", tag=tag, flow=flow)
    env = {**limits.env, "BATON_HEARTBEAT_INTERVAL": "0.2"}
    process = asyncio.create_task(limits.python(script, env=env))
    api = Api(limits.http)

    async def awaiting() -> FlowRun | None:
        for run in await api.runs(flow):
            tasks = await api.task_runs(run.id)
            if tasks and tasks[0].state.name == "AwaitingConcurrencySlot":
                return run
        return None

    run = await wait_for(awaiting, "the task run to wait for its slot", timeout=30)
    assert (await limits.http.post(f"/flow_runs/{run.id}/cancel")).status_code == 200
    finished = await process
    assert finished.returncode == 1 and "CancelledRun" in finished.stderr
    [task_run] = await api.task_runs(run.id)
    states = [state.name for state in await api.task_run_states(task_run.id)]
    assert states == ["Pending", "AwaitingConcurrencySlot", "Cancelled"]
    assert (await api.run(run.id)).state.name == "Cancelled"
    assert await limits.held(name) == 1  # it took no slot; the test's own is still held
