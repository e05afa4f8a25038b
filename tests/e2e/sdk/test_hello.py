"""The hello example, run as `python flow.py` and watched the way a user does: the API and
`baton flow-run ls / inspect / logs --follow`."""

from __future__ import annotations

import asyncio
import itertools
import re
import sys

from ...support.processes import BATON
from .conftest import Sdk, run_process, wait_for

HELLO = """
    from baton import flow, task


    @task
    def hello(name: str):
        print(f"Hello, {name}")


    @flow(name="$name", retries=3, log_prints=True)
    def say_hello():
        for name in ["Marvin", "Arthur", "Ford"]:
            hello(name)


    if __name__ == "__main__":
        say_hello()
"""

NAMES = ["Marvin", "Arthur", "Ford"]


def _lines_in_order(text: str, *fragments: str) -> bool:
    """Each fragment on a line of its own, in this order."""
    lines = text.splitlines()
    at = 0
    for fragment in fragments:
        while at < len(lines) and fragment not in lines[at]:
            at += 1
        if at == len(lines):
            return False
        at += 1
    return True


async def test_hello_flow_is_stored_with_its_task_runs_states_and_prints(sdk: Sdk) -> None:
    name = sdk.flow_name("say-hello")
    finished = await sdk.run_flow(HELLO, name=name)
    assert [f"Hello, {n}" for n in NAMES] == finished.stdout.split("\n")[:3]

    run = await sdk.api.settled(name, task_runs=3)
    assert (run.state.type, run.state.name, run.run_count) == ("COMPLETED", "Completed", 1)
    assert run.start_time is not None and run.end_time is not None and run.start_time <= run.end_time
    assert [s.name for s in await sdk.api.states(run.id)] == ["Pending", "Running", "Completed"]

    tasks = await sdk.api.task_runs(run.id)
    assert [t.name for t in tasks] == ["hello-0", "hello-1", "hello-2"]
    for task_run in tasks:
        assert (task_run.state.name, task_run.run_count, task_run.task_inputs) == ("Completed", 1, {})
        history = await sdk.api.task_run_states(task_run.id)
        assert [s.name for s in history] == ["Pending", "Running", "Completed"]
        assert [s.timestamp for s in history] == sorted(s.timestamp for s in history)
    # called one after the other: each ended before the next one started
    for before, after in itertools.pairwise(tasks):
        assert before.end_time is not None and after.start_time is not None
        assert before.end_time <= after.start_time

    logs = await sdk.api.logs(run.id)
    prints = [(r.task_run_id, r.message) for r in logs if r.message.startswith("Hello")]
    assert prints == [(t.id, f"Hello, {n}") for t, n in zip(tasks, NAMES, strict=True)]
    assert [r.timestamp for r in logs] == sorted(r.timestamp for r in logs)
    flow_lines = [r.message for r in logs if r.task_run_id is None]
    assert flow_lines[0] == f"Created flow run {run.name!r} for flow {name!r}"
    assert flow_lines[-1] == "Finished in state Completed()"

    # the CLI shows the same
    listed = (await sdk.baton("flow-run", "ls", "--flow", name)).stdout
    [row] = [line for line in listed.splitlines() if str(run.id) in line]
    assert run.name in row and name in row and "Completed" in row

    inspected = (await sdk.baton("flow-run", "inspect", str(run.id))).stdout
    assert run.name in inspected and re.search(r"^Run count +1 *$", inspected, re.MULTILINE)
    assert _lines_in_order(inspected, "State history", "Pending", "Running", "Completed", "Task runs (3)")
    for task_run in tasks:
        [row] = [line for line in inspected.splitlines() if line.startswith(f"{task_run.name} ")]
        assert "Completed" in row

    followed = (await sdk.baton("flow-run", "logs", str(run.id), "--follow")).stdout
    assert _lines_in_order(
        followed,
        f"Flow run {run.name!r} - Created flow run",
        *(f"Task run 'hello-{i}' - Hello, {n}" for i, n in enumerate(NAMES)),
        f"Flow run {run.name!r} - Finished in state Completed()",
    )
    # --follow ends as --watch does, with the run's final state
    expected = (await sdk.baton("flow-run", "logs", str(run.id))).stdout
    assert followed == expected + f"Flow run {run.name!r} ended Completed\n"


SLOW_HELLO = """
    import time

    from baton import flow, task


    @task
    def hello(name: str):
        time.sleep(0.3)
        print(f"Hello, {name}")


    @flow(name="$name", log_prints=True)
    def say_hello():
        for name in ["Marvin", "Arthur", "Ford"]:
            hello(name)


    if __name__ == "__main__":
        say_hello()
"""


async def test_logs_follow_streams_a_run_in_progress_to_its_end(sdk: Sdk) -> None:
    name = sdk.flow_name("say-hello-slowly")
    path = sdk.write(SLOW_HELLO, name=name)
    flow_process = asyncio.create_task(run_process([sys.executable, str(path)], sdk.env, sdk.workdir))

    async def started() -> str | None:
        runs = await sdk.api.runs(name)
        return str(runs[0].id) if runs else None

    run_id = await wait_for(started, "the flow run to exist")
    followed = await run_process([BATON, "flow-run", "logs", run_id, "--follow"], sdk.env, sdk.workdir)
    (await flow_process).check()
    followed.check()
    # followed while it ran: every line up to the run's very last one
    assert _lines_in_order(
        followed.stdout,
        "Entered state Running()",
        *(f"Task run 'hello-{i}' - Hello, {n}" for i, n in enumerate(NAMES)),
        "Finished in state Completed()",
    )
