"""`baton server start` as an operator runs it, used by clients and subscribers as they would."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import aio_pika
import httpx

from baton._transport.amqp import AmqpTracker
from baton_schemas.envelopes import Claim, ProposeState, StateChange
from baton_schemas.runs import FlowRunCreate
from baton_schemas.states import Completed, Pending, Running, Verdict
from baton_schemas.topology import STATES

from ..support.backends import Backends
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually


async def test_server_serves_http_and_amqp_and_stops_on_sigterm(backends: Backends, tmp_path: Path) -> None:
    key = subprocess.run(  # noqa: ASYNC221 - the CLI as a user runs it, before anything else
        [BATON, "api-key", "create", "--name", "e2e", "--scope", "write"],
        env=baton_env(backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert key.startswith("baton_")

    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        with server_process(backends, tmp_path) as server:
            # another system's own queue, bound once Baton has declared its exchanges
            channel = await connection.channel()
            subscriber = await channel.declare_queue(exclusive=True)
            await subscriber.bind(STATES, routing_key="flow-run.#")
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=server.api_url, headers=headers) as http:
                assert (await http.get("/flow_runs", headers={"Authorization": ""})).status_code == 401
                created = await http.post("/flow_runs", json={"flow_name": "e2e flow"})
                assert created.status_code == 201, created.text
                run_id = uuid.UUID(created.json()["id"])

                async with await AmqpTracker.connect(backends.broker_url) as tracker:
                    claim = await tracker.propose_state(
                        ProposeState(flow_run_id=run_id, state=Pending(), claim=Claim(worker_id="e2e"))
                    )
                    assert claim.verdict is Verdict.ACCEPT
                    again = await tracker.propose_state(
                        ProposeState(flow_run_id=run_id, state=Pending(), claim=Claim(worker_id="other"))
                    )
                    assert again.verdict is Verdict.ABORT
                    await tracker.propose_state(ProposeState(flow_run_id=run_id, state=Running()))
                    other = await tracker.create_flow_run(FlowRunCreate(flow_name="made over amqp"))
                    assert other.flow_name == "made over amqp"

                ended = await http.post(
                    f"/flow_runs/{run_id}/set_state", json={"state": Completed().model_dump(mode="json")}
                )
                assert ended.json()["verdict"] == "ACCEPT"
                history = (await http.get(f"/flow_runs/{run_id}/states")).json()
                assert [s["name"] for s in history] == ["Scheduled", "Pending", "Running", "Completed"]

            seen: list[StateChange] = []

            async def drained() -> bool:
                while (message := await subscriber.get(fail=False)) is not None:
                    seen.append(StateChange.model_validate_json(message.body))
                    await message.ack()
                return [c.state.name for c in seen if c.run_id == run_id] == [
                    "Scheduled",
                    "Pending",
                    "Running",
                    "Completed",
                ]

            await eventually(drained, what="the run's four state changes on baton.states")
            assert server.stop(timeout=20) == 0
            assert "stopped" in server.log()


async def test_tracker_runs_alone(backends: Backends, tmp_path: Path) -> None:
    with server_process(backends, tmp_path, "tracker") as server:
        async with await AmqpTracker.connect(backends.broker_url) as tracker:
            run = await tracker.create_flow_run(FlowRunCreate(flow_name="tracker alone"))
            result = await tracker.propose_state(ProposeState(flow_run_id=run.id, state=Running()))
            assert result.verdict is Verdict.ACCEPT
        assert server.stop(timeout=20) == 0
        assert "Uvicorn running" not in server.log()
