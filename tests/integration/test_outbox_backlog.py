"""A burst larger than the outbox's queue: the publishing task hands over to the sweeper while
it holds a batch. Every message arrives, and none twice (the sweeper used to send the batch in
flight again).

"None twice" is read once nothing more can come. The table is empty: no sweep holds a row (a
sweep publishes and has its confirms before its delete commits). Then the outbox is stopped:
its stop waits until the publishing task has nothing queued or on its way, and no sweep can be
cut off, as none has anything to send. Then a marker goes out on the publisher's one channel,
behind every message the outbox wrote there: one channel, one queue, one consumer keep that
order, so once the marker is seen, any copy sent twice has been seen too."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import aio_pika
import pytest

from baton_schemas.topology import STATES
from baton_server.broker.outbox import Outbox, OutboxMessage
from baton_server.broker.publisher import json_properties
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings

from ..support.backends import Backends, separate_backends
from ..support.waiting import eventually


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    with separate_backends(backends, "outbox-backlog") as separate:
        yield separate


async def test_a_burst_past_the_queue_is_delivered_once_each(
    own_backends: Backends, server_settings: ServerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baton_server.broker.outbox")
    settings = server_settings.model_copy(
        update={"database_url": own_backends.database_url, "broker_url": own_backends.broker_url}
    )
    ctx = await ServerContext.open(settings, name="baton-outbox-backlog")
    outside = await aio_pika.connect(own_backends.broker_url)
    try:
        ctx.outbox._max_queued = 300  # a burst of 6,000 overflows it many times
        channel = await outside.channel()
        subscriber = await channel.declare_queue(f"subscriber-{uuid.uuid4().hex[:8]}", exclusive=True)
        await subscriber.bind(STATES, routing_key="burst.#")
        seen: list[str] = []

        async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            seen.append(str(message.message_id))
            await message.ack()

        await subscriber.consume(count)
        sent = [uuid.uuid4() for _ in range(6000)]

        async def commit(ids: list[uuid.UUID]) -> None:
            async with ctx.pool.acquire() as conn, conn.transaction():
                rows = await Outbox.add(conn, [OutboxMessage(STATES, "burst.x", i, b"{}") for i in ids])
            ctx.outbox.sent_after_commit(rows)

        await asyncio.gather(*(commit(sent[n : n + 100]) for n in range(0, len(sent), 100)))

        async def all_arrived() -> bool:
            return len(set(seen)) == len(sent)

        await eventually(all_arrived, timeout=60, what="every message")

        async def table_empty() -> bool:
            async with ctx.pool.acquire() as conn:
                return int(await conn.fetchval("SELECT count(*) FROM outbox")) == 0

        await eventually(table_empty, what="every row deleted")
        await ctx.outbox.stop(grace=settings.shutdown_grace_seconds)
        marker = str(uuid.uuid4())
        await ctx.publisher.publish(STATES, "burst.marker", b"{}", json_properties(message_id=marker))

        async def marker_arrived() -> bool:
            return marker in seen

        await eventually(marker_arrived, what="the marker behind every message the outbox sent")
        seen.remove(marker)
        assert set(seen) == {str(i) for i in sent}
        said = [r.getMessage() for r in caplog.records]
        if not any("publish failed" in line for line in said):
            # a publish whose confirm timed out is sent again (at least once, by design); short
            # of that, the hand-over between the publishing task and the sweeper sends each once
            assert len(seen) == len(sent), f"{len(seen) - len(sent)} delivered twice; the outbox said {said}"
    finally:
        await outside.close()
        await ctx.close()
