"""A message on a pool queue that is not a dispatch (issue 13, point 7): the worker parks it in
`baton.dead` with the precise reason (its content type, or what its schema refused) and keeps
consuming: the next run is served."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import aio_pika

from baton_schemas.topology import RUNS, pool_routing_key

from ...support.processes import BATON
from .conftest import Setup, wait_until


async def _publish(url: str, routing_key: str, bodies: list[tuple[str, bytes, str]]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(RUNS)
        for message_id, body, content_type in bodies:
            await exchange.publish(
                aio_pika.Message(body, content_type=content_type, message_id=message_id),
                routing_key=routing_key,
                mandatory=True,
            )


def _parked(setup: Setup, ids: set[str]) -> dict[str, dict[str, str]] | None:
    listed = subprocess.run(
        [BATON, "dead-letters", "ls", "--json", "--limit", "10000"],
        env=setup.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = {letter["message_id"]: letter for letter in json.loads(listed) if letter["message_id"] in ids}
    return ours if set(ours) == ids else None


def test_a_bad_message_on_a_pool_queue_is_parked_with_its_reason(setup: Setup, tmp_path: Path) -> None:
    setup.start_worker()
    wrong_type, wrong_shape = str(uuid.uuid4()), str(uuid.uuid4())
    asyncio.run(
        _publish(
            setup.server.backends.broker_url,
            pool_routing_key(setup.pool, "default"),
            [
                (wrong_type, b"run the thing please", "text/plain"),
                (wrong_shape, b'{"flow_run_id": "not-a-uuid"}', "application/json"),
            ],
        )
    )
    parked = wait_until(lambda: _parked(setup, {wrong_type, wrong_shape}), what="both in baton.dead")
    assert "content type 'text/plain'" in parked[wrong_type]["reason"]
    assert "not a FlowRunDispatch" in parked[wrong_shape]["reason"]
    assert "flow_run_id" in parked[wrong_shape]["reason"]
    assert parked[wrong_shape]["queue"] == f"baton.pool.{setup.pool}.default"
    assert parked[wrong_type]["body"] == "run the thing please"

    # the worker goes on consuming
    deployment = setup.deployment()
    run = setup.api.run(deployment, parameters={"path": str(tmp_path / "out")})
    assert setup.api.wait_state(run["id"], "COMPLETED", "FAILED", "CRASHED")["type"] == "COMPLETED"
