"""Pausing an ad hoc run (`python flow.py`) for input against the live server, over HTTP and over
AMQP: an async flow awaits `pause_flow_run(wait_for_input=int)` and gets the value it is resumed
with; `suspend_flow_run` is refused for a run that no worker could start again."""

from __future__ import annotations

import asyncio
import sys

import aio_pika

from baton_schemas import slugify
from baton_schemas.envelopes import StateChange
from baton_schemas.runs import FlowRun
from baton_schemas.topology import STATES

from ..conftest import LiveServer
from .conftest import Sdk, wait_for

SOURCE = """
import asyncio

from baton import flow, pause_flow_run, suspend_flow_run


@flow(name="$waits")
async def waits() -> int:
    value = await pause_flow_run(wait_for_input=int, timeout=60, poll_interval=0.2)
    return value * 2


@flow(name="$refuses")
def refuses() -> None:
    suspend_flow_run()


if __name__ == "__main__":
    print("doubled", asyncio.run(waits()))
    try:
        refuses()
    except Exception as exc:
        print("refused:", exc)
"""


async def test_an_async_ad_hoc_run_pauses_for_a_value_and_suspending_it_is_refused(
    sdk: Sdk, live_server: LiveServer
) -> None:
    waits, refuses = sdk.flow_name("waits"), sdk.flow_name("refuses")
    path = sdk.write(SOURCE, waits=waits, refuses=refuses)
    connection = await aio_pika.connect(live_server.backends.broker_url)
    channel = await connection.channel()
    subscriber = await channel.declare_queue(exclusive=True)  # another system's own queue
    await subscriber.bind(STATES, routing_key=f"flow-run.paused.{slugify(waits)}")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        env=sdk.env,
        cwd=sdk.workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def paused() -> FlowRun | None:
            runs = await sdk.api.runs(waits)
            return runs[0] if runs and runs[0].state.is_paused() else None

        run = await wait_for(paused, f"a paused run of {waits}", timeout=30)
        schema = await sdk.api.http.get(f"/flow_runs/{run.id}/inputs/pause-1-schema")
        assert schema.status_code == 200, schema.text
        assert schema.json()["value"]["properties"]["value"]["type"] == "integer"
        wrong = await sdk.api.http.post(f"/flow_runs/{run.id}/resume", json={"run_input": {"value": "x"}})
        assert wrong.status_code == 422
        resumed = await sdk.api.http.post(f"/flow_runs/{run.id}/resume", json={"run_input": {"value": 21}})
        assert resumed.status_code == 200 and resumed.json()["state"]["type"] == "RUNNING", resumed.text
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout = out.decode()
    assert process.returncode == 0, err.decode()
    assert "doubled 42" in stdout
    assert "refused: suspend_flow_run(): flow run" in stdout and "is not a deployment's" in stdout
    done = await sdk.api.settled(waits)
    assert done.state.is_completed() and done.run_count == 1
    names = [s.name for s in await sdk.api.states(done.id)]
    assert names == ["Pending", "Running", "Paused", "Running", "Completed"]
    failed = await sdk.api.settled(refuses)
    assert failed.state.is_failed() and "is not a deployment's" in (failed.state.message or "")

    async def published() -> StateChange | None:
        message = await subscriber.get(fail=False)
        return StateChange.model_validate_json(message.body) if message is not None else None

    try:
        change = await wait_for(published, "the Paused state on baton.states")
    finally:
        await connection.close()
    assert change.run_id == done.id and change.state.name == "Paused"
    assert change.state.data is not None and change.state.data["pause"]["key"] == "pause-1"
