"""PostgreSQL stops under the tracker while fire-and-forget batches arrive (issue 13, point 4):
the consumers pause instead of spending the messages' delivery limit, nothing is parked in
`baton.dead`, and everything is applied once the database is back."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from baton_schemas.envelopes import Logs
from baton_schemas.logs import LogRecord
from baton_schemas.topology import DEAD_QUEUE, TRACKER, TRACKER_DELIVERY_LIMIT, TRACKER_ROUTING_KEY

from ..support.backends import Backends, separate_backends
from ..support.private import PrivatePostgres, private_postgres
from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually
from ._cluster import past

pytestmark = pytest.mark.chaos

BATCHES = 20


@pytest.fixture
def outage_backends(backends: Backends) -> Iterator[tuple[Backends, PrivatePostgres]]:
    """A vhost of its own on the machine's RabbitMQ and a private PostgreSQL cluster."""
    with separate_backends(backends, "pause") as separate, private_postgres() as pg:
        yield dataclasses.replace(separate, database_url=pg.url("baton")), pg


async def test_a_database_outage_parks_nothing(
    outage_backends: tuple[Backends, PrivatePostgres], tmp_path: Path
) -> None:
    backends, pg = outage_backends
    await asyncio.to_thread(
        subprocess.run,
        [BATON, "server", "db", "upgrade", "--create"],
        env=baton_env(backends),
        check=True,
        capture_output=True,
    )
    flow_run_id = uuid.uuid4()
    batches = [Logs(logs=[LogRecord(message=f"log {i}", flow_run_id=flow_run_id)]) for i in range(BATCHES)]
    with server_process(backends, tmp_path, "tracker") as server:
        await asyncio.to_thread(pg.stop)
        connection = await aio_pika.connect(backends.broker_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(TRACKER)
            for batch in batches:
                message = aio_pika.Message(
                    batch.to_json(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await exchange.publish(message, routing_key=TRACKER_ROUTING_KEY)
            # the outage outlasts what the delivery limit allowed at one redelivery per 0.5 s
            until = time.monotonic() + TRACKER_DELIVERY_LIMIT * 0.5 + 5
            await eventually(lambda: asyncio.sleep(0, past(until)), timeout=60, what="the outage")
            await asyncio.to_thread(pg.start)

            async def stored() -> bool:
                conn = await asyncpg.connect(backends.database_url)
                try:
                    count = await conn.fetchval(
                        "SELECT count(*) FROM logs WHERE flow_run_id = $1", flow_run_id
                    )
                finally:
                    await conn.close()
                return bool(count == BATCHES)

            try:
                await eventually(
                    stored, timeout=60, interval=0.3, what="every batch applied after the outage"
                )
            except AssertionError as exc:
                lines = [line for line in server.log().splitlines() if "baton_server" in line]
                raise AssertionError("\n".join(lines[-40:])) from exc
            dead = await channel.declare_queue(DEAD_QUEUE, passive=True)
            assert dead.declaration_result.message_count == 0
