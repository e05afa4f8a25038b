"""Issue 16's SDK points where what the server stores matters (docs/parity.md): a flow run as
`python flow.py`, then read back through the API. Tags blocks and run names (points 1, 2), a
state a task made (4), returned states deciding the run (5), NotReady (7), a hook that raises
(11), `baton.runtime` and `get_client()` (15); and `flow-run logs` in timestamp order (18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ...support.processes import BATON
from ...support.waiting import eventually
from ..conftest import LiveServer
from .conftest import Api, Sdk, run_process, unique_name, wait_for

TAGGED = """
    from datetime import date

    from baton import flow, get_client, runtime, tags, task
    from baton.states import Completed


    @task(tags=["io"], task_run_name="load-{table}")
    def load(table: str) -> str:
        return table


    @task
    def skip() -> Completed:
        return Completed(name="Skipped", message="nothing new")


    def shout(flow, run, state):
        raise RuntimeError("the hook broke")


    @flow(name="$name", tags=["etl"], flow_run_name="{table}-on-{day:%Y-%m-%d}", on_completion=[shout])
    def tagged(table: str, day: date) -> str:
        with tags("inner"):
            load(table)
        skip()
        with get_client(sync_client=True) as client:
            me = client.read_flow_run(runtime.flow_run.id)
        return f"{me.name} {runtime.flow_run.name} {runtime.deployment.id}"


    if __name__ == "__main__":
        with tags("nightly"):
            print(tagged("orders", date(2026, 1, 2)))
"""


async def test_tags_names_a_made_state_a_raising_hook_and_the_runtime_are_stored(sdk: Sdk) -> None:
    name = sdk.flow_name("tagged")
    done = await sdk.run_flow(TAGGED, name=name)
    # get_client() read the run from the server: its templated name; not a deployment run
    assert done.stdout.strip() == "orders-on-2026-01-02 orders-on-2026-01-02 None"
    run = await sdk.api.settled(name, task_runs=2)
    assert (run.name, run.state.name) == ("orders-on-2026-01-02", "Completed")  # the hook changed nothing
    assert sorted(run.tags) == ["etl", "nightly"]
    load, skip = sorted(await sdk.api.task_runs(run.id), key=lambda t: t.name)
    assert load.name == "load-orders" and sorted(load.tags) == ["etl", "inner", "io", "nightly"]
    assert (skip.state.type, skip.state.name, skip.state.message) == ("COMPLETED", "Skipped", "nothing new")

    async def hook_logged() -> bool:
        logs = [r.message for r in await sdk.api.logs(run.id)]
        return any("running hook 'shout'" in m and "the hook broke" in m for m in logs)

    await eventually(hook_logged, what="the hook's error in the run's logs")


AGGREGATED = """
    from baton import flow, task


    @task
    def broken(n: int) -> int:
        raise ValueError(f"no rows {n}")


    @task
    def fine() -> int:
        return 1


    @task
    def downstream(x: int) -> int:
        return x


    @flow(name="$failing")
    def failing() -> list:
        return [broken.submit(1), broken.submit(2), fine.submit()]


    @flow(name="$waiting")
    def waiting() -> str:
        future = downstream.submit(broken.submit(3))
        future.wait()
        return future.state.name


    if __name__ == "__main__":
        states = failing()  # a collection is returned, not raised, as the reference system does
        print([state.type.value for state in states])
        print(waiting())
"""


async def test_returned_states_decide_the_run_and_a_task_after_a_failure_is_not_ready(sdk: Sdk) -> None:
    failing, waiting = sdk.flow_name("failing"), sdk.flow_name("waiting")
    done = await sdk.run_flow(AGGREGATED, failing=failing, waiting=waiting)
    assert done.stdout.splitlines() == ["['FAILED', 'FAILED', 'COMPLETED']", "NotReady"]
    run = await sdk.api.settled(failing, task_runs=3)
    assert (run.state.type, run.state.message) == ("FAILED", "2/3 states failed.")

    async def not_ready() -> list[list[str]] | None:
        [run] = await sdk.api.runs(waiting)
        if not run.state.is_terminal:
            return None
        tasks = await sdk.api.task_runs(run.id)
        histories = [[s.name for s in await sdk.api.task_run_states(t.id)] for t in tasks]
        return histories if len(histories) == 2 and histories[1][-1:] == ["NotReady"] else None

    broken, downstream = await wait_for(not_ready, "the downstream task run NotReady")
    assert broken[-1] == "Failed"
    assert downstream == ["Pending", "NotReady"]  # it never ran
    [waited] = await sdk.api.runs(waiting)
    assert waited.state.name == "Completed"


async def test_flow_run_logs_are_printed_in_the_order_of_their_timestamps(
    api: Api, live_server: LiveServer, tmp_path: Path
) -> None:
    created = await api.http.post("/flow_runs", json={"flow_name": unique_name("ordered", "cli")})
    run_id = created.json()["id"]
    base = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def at(seconds: float, message: str) -> dict[str, object]:
        moment = (base + timedelta(seconds=seconds)).isoformat()
        return {"flow_run_id": run_id, "message": message, "level": 20, "timestamp": moment}

    # the final state line arrives first, as a batch from the engine can
    for batch in ([at(9, "Finished in state Completed()")], [at(2, "printed b"), at(1, "printed a")]):
        (await api.http.post("/logs", json={"logs": batch})).raise_for_status()
    env = live_server.client_env(BATON_HOME=str(tmp_path / "home"))
    shown = (await run_process([BATON, "flow-run", "logs", run_id[:13]], env, tmp_path)).check().stdout
    order = [m for line in shown.splitlines() for m in ("printed a", "printed b", "Finished in") if m in line]
    assert order == ["printed a", "printed b", "Finished in"], shown


PRINTS = """
    from baton import flow


    @flow(name="$quiet")
    def quiet() -> None:
        print("a quiet line")


    @flow(name="$loud", log_prints=True)
    def loud() -> None:
        print("a loud line")


    if __name__ == "__main__":
        quiet()
        loud()
"""


async def test_a_local_runs_prints_reach_its_logs_only_with_log_prints(sdk: Sdk) -> None:
    """Point 9 for a flow run as `python flow.py` (through a worker: e2e/worker/test_worker.py)."""
    quiet, loud = sdk.flow_name("quiet"), sdk.flow_name("loud")
    done = await sdk.run_flow(PRINTS, quiet=quiet, loud=loud)
    assert "a quiet line" in done.stdout and "a loud line" in done.stdout  # printed all the same
    quiet_logs = [r.message for r in await sdk.api.logs((await sdk.api.settled(quiet)).id)]
    loud_logs = [r.message for r in await sdk.api.logs((await sdk.api.settled(loud)).id)]
    assert "a loud line" in loud_logs
    assert not any("quiet line" in m for m in quiet_logs) and any(
        m.startswith("Finished in") for m in quiet_logs
    )
