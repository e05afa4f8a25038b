"""The tracker's RPC queue drops what expires in it instead of dead-lettering it (issue 13,
points 4 and 9), and a vhost whose queue still dead-letters (declared by an older Baton) gets it
replaced at the next declaration, since RabbitMQ refuses to re-declare a queue with other
arguments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baton._amqp import ChannelClosed, Connection
from baton_schemas.topology import DEAD, EXCHANGES, TRACKER, TRACKER_RPC_QUEUE, tracker_rpc_queue_arguments
from baton_server.broker.topology import declare_topology

from ..support.backends import Backends, separate_backends

DEAD_LETTERING = {**tracker_rpc_queue_arguments(), "x-dead-letter-exchange": DEAD}


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    """A vhost of its own: this test deletes and re-declares the RPC queue."""
    with separate_backends(backends, "rpcqueue") as separate:
        yield separate


async def test_a_dead_lettering_rpc_queue_is_replaced_by_one_that_drops(own_backends: Backends) -> None:
    connection = await Connection.open(own_backends.broker_url, name="baton-tests-rpc-queue", timeout=10)
    try:
        older = await connection.channel()
        await older.declare_exchange(TRACKER, EXCHANGES[TRACKER].value, durable=True)
        await older.declare_queue(TRACKER_RPC_QUEUE, durable=True, arguments=DEAD_LETTERING)
        await older.close()

        await declare_topology(connection)
        await declare_topology(connection)  # and again, now that it has the new arguments

        check = await connection.channel()
        # RabbitMQ accepts a declaration only with the queue's own arguments
        _, messages, _ = await check.declare_queue(
            TRACKER_RPC_QUEUE, durable=True, arguments=tracker_rpc_queue_arguments()
        )
        assert messages == 0
        with pytest.raises(ChannelClosed) as refused:
            await check.declare_queue(TRACKER_RPC_QUEUE, durable=True, arguments=DEAD_LETTERING)
        assert refused.value.code == ChannelClosed.PRECONDITION_FAILED
        assert "x-dead-letter-exchange" in refused.value.text
    finally:
        await connection.close()
