"""`baton flow-run ls / inspect / logs / cancel` against the live server: filters, cancelling,
and failures as one readable line (exit 1, no traceback)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from baton_schemas.states import Completed, Running, TimedOut

from ...support.processes import BATON, baton_env, free_port
from ..conftest import LiveServer
from .conftest import Api, Finished, Sdk, run_process, unique_name, wait_for


async def baton(env: dict[str, str], cwd: Path, *args: str) -> Finished:
    return await run_process([BATON, *args], env, cwd)


def rows(output: str, flow_name: str) -> list[str]:
    return [line for line in output.splitlines() if flow_name in line]


async def _create(api: Api, flow_name: str, *, tags: list[str], states: list[str] | None = None) -> str:
    """A run made through the API (Scheduled), moved through `states` with admin force."""
    response = await api.http.post("/flow_runs", json={"flow_name": flow_name, "tags": tags})
    response.raise_for_status()
    run_id = str(response.json()["id"])
    made = {"Running": Running, "Completed": Completed, "TimedOut": TimedOut}
    for name in states or []:
        body = {"state": made[name]().model_dump(mode="json"), "force": True}
        (await api.http.post(f"/flow_runs/{run_id}/set_state", json=body)).raise_for_status()
    return run_id


@pytest.fixture
def env(live_server: LiveServer, tmp_path: Path) -> dict[str, str]:
    return live_server.client_env(BATON_HOME=str(tmp_path / "home"))


async def test_ls_filters_by_flow_state_tag_and_limit(api: Api, env: dict[str, str], tmp_path: Path) -> None:
    flow_name = unique_name("listed", "cli")
    scheduled = await _create(api, flow_name, tags=["nightly", "etl"])
    completed = await _create(api, flow_name, tags=["etl"], states=["Running", "Completed"])
    timed_out = await _create(api, flow_name, tags=["adhoc"], states=["Running", "TimedOut"])

    async def ids(*args: str) -> list[str]:
        listed = await baton(env, tmp_path, "flow-run", "ls", "--flow", flow_name, *args)
        return [row.split()[0] for row in rows(listed.check().stdout, flow_name)]

    assert await ids() == [timed_out, completed, scheduled]  # newest first
    assert await ids("--limit", "2") == [timed_out, completed]
    assert await ids("--state", "completed") == [completed]
    assert await ids("--state", "SCHEDULED", "--state", "failed") == [timed_out, scheduled]
    assert await ids("--state", "TimedOut") == [timed_out]  # a named state
    assert await ids("--state", "Cached") == []
    assert await ids("--tag", "etl") == [completed, scheduled]
    assert await ids("--tag", "etl", "--tag", "nightly") == [scheduled]

    listed = (await baton(env, tmp_path, "flow-run", "ls", "--flow", flow_name)).stdout
    header = listed.splitlines()[0].split()
    assert header == ["ID", "Name", "Flow", "State", "Start", "Duration"]
    [row] = [r for r in rows(listed, flow_name) if r.startswith(completed)]
    assert "Completed" in row and row.rstrip().endswith("s")  # a duration

    nothing = await baton(env, tmp_path, "flow-run", "ls", "--flow", unique_name("none", "cli"))
    assert nothing.check().stdout.strip() == "No flow runs."
    wrong = await baton(env, tmp_path, "flow-run", "ls", "--state", "sleepy")
    assert wrong.returncode == 2 and "unknown state 'sleepy'" in wrong.stderr


async def test_cancel_a_scheduled_run_and_a_finished_one(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    flow_name = unique_name("cancelled", "cli")
    waiting = await _create(api, flow_name, tags=[])
    cancelled = await baton(env, tmp_path, "flow-run", "cancel", waiting)
    assert cancelled.check().stdout.strip().endswith("): Cancelled")
    history = [s.name for s in await api.states(uuid.UUID(waiting))]
    assert history == ["Scheduled", "Cancelled"]
    again = await baton(env, tmp_path, "flow-run", "cancel", waiting)  # nothing left to do
    assert "Cancelled" in again.check().stdout

    done = await _create(api, flow_name, tags=[], states=["Running", "Completed"])
    refused = await baton(env, tmp_path, "flow-run", "cancel", done)
    assert refused.returncode == 1 and ": Completed" in refused.stdout
    assert (await api.run(uuid.UUID(done))).state.name == "Completed"


LONG = """
    import time

    from baton import flow, task


    @task
    def step(i: int) -> int:
        time.sleep(0.2)
        return i


    @flow(name="$name")
    def long_flow() -> None:
        for i in range(40):  # 8 s: room for a slow `baton flow-run cancel` on a loaded machine
            step(i)


    if __name__ == "__main__":
        long_flow()
"""


async def test_cancel_a_running_flow_process(sdk: Sdk) -> None:
    """With no worker, the engine learns of the cancellation from its heartbeat's answer (an
    HTTP response or an AMQP RPC reply), starts no more tasks and ends the run Cancelled."""
    name = sdk.flow_name("cancel-me")
    path = sdk.write(LONG, name=name)
    env = {**sdk.env, "BATON_HEARTBEAT_INTERVAL": "0.2"}
    flow_process = asyncio.create_task(run_process([sys.executable, str(path)], env, sdk.workdir))

    async def running() -> str | None:
        runs = await sdk.api.runs(name)
        return str(runs[0].id) if runs and runs[0].state.name == "Running" else None

    run_id = await wait_for(running, "the flow run to be Running")
    cancelled = await sdk.baton("flow-run", "cancel", run_id)
    assert cancelled.stdout.strip().endswith("): Cancelling")

    finished = await flow_process
    assert finished.returncode == 1
    assert "CancelledRun: " in finished.stderr.strip().splitlines()[-1]
    run = await sdk.api.run(uuid.UUID(run_id))
    assert run.state.name == "Cancelled"
    assert [s.name for s in await sdk.api.states(run.id)][-2:] == ["Cancelling", "Cancelled"]
    tasks = await sdk.api.task_runs(run.id)
    completed = [t for t in tasks if t.state.name == "Completed"]
    assert len(completed) < 40, "tasks after the cancellation did not run"
    assert any(t.state.name == "Cancelled" for t in tasks)


async def test_cli_failures_are_one_readable_line(
    live_server: LiveServer, api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    existing = await _create(api, unique_name("guarded", "cli"), tags=[])
    read_key = subprocess.run(  # noqa: ASYNC221 - a key as an operator makes it
        [BATON, "api-key", "create", "--name", "cli-read", "--scope", "read"],
        env=baton_env(live_server.backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    unreachable = {**env, "BATON_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    no_url = {k: v for k, v in env.items() if k != "BATON_API_URL"}
    cases = [
        (env, ["inspect", missing], f"error: flow run {missing} does not exist"),
        (env, ["logs", missing], f"error: flow run {missing} does not exist"),
        (env, ["logs", missing, "--follow"], f"error: flow run {missing} does not exist"),
        (env, ["cancel", missing], f"error: flow run {missing} does not exist"),
        ({**env, "BATON_API_KEY": "baton_wrong"}, ["ls"], "error: the server refused the request: unknown"),
        ({**env, "BATON_API_KEY": read_key}, ["cancel", existing], "error: this API key is not allowed"),
        (unreachable, ["ls"], "error: cannot reach the Baton server at http://127.0.0.1:"),
        (no_url, ["ls"], "error: BATON_API_URL is not set"),
        ({**env, "BATON_API_URL": live_server.api_url[: -len("/api")]}, ["ls"], "error: not found at"),
    ]
    for case_env, args, expected in cases:
        failed = await baton(case_env, tmp_path, "flow-run", *args)
        assert failed.returncode == 1, (args, failed)
        assert failed.stderr.startswith(expected), (args, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1, (args, failed.stderr)
        assert failed.stdout == ""
