"""The outbox publisher cannot die.

A row the broker returns as unroutable is parked in `baton.dead`; here `baton.dead` itself is
gone, so parking fails. The publisher must log it, leave the row to the sweeper, and keep
publishing; once `baton.dead` is back the row is parked; and the context still closes every part.
The sweeper's age is an hour, so a fresh row reaches its queue only through the publishing task.

Should a part fail to close all the same (the outbox's stop re-raising what ended its task, as it
once did), the context logs it and still closes the parts after it: the link and both pools.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator

import aio_pika
import pytest

from baton._amqp import ConnectionClosed
from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD, DEAD_QUEUE, RUNS, STATES
from baton_server.broker.outbox import Outbox, OutboxMessage
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings

from ..support.backends import Backends, separate_backends
from ..support.waiting import eventually


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    """A database and vhost of their own: this test removes `baton.dead` for a while."""
    with separate_backends(backends, "outbox") as separate:
        yield separate


async def _add(ctx: ServerContext, message: OutboxMessage) -> None:
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await Outbox.add(conn, [message])
    ctx.outbox.sent_after_commit(rows)


async def _outbox_count(ctx: ServerContext) -> int:
    async with ctx.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))


async def test_a_failing_dead_letter_park_does_not_stop_the_outbox(
    own_backends: Backends, server_settings: ServerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = server_settings.model_copy(
        update={
            "database_url": own_backends.database_url,
            "broker_url": own_backends.broker_url,
            "outbox_sweep_age_seconds": 3600.0,
        }
    )
    ctx = await ServerContext.open(settings, name="baton-outbox-survival")
    closed = False
    outside = await aio_pika.connect(own_backends.broker_url)
    try:
        channel = await outside.channel()
        subscriber = await channel.declare_queue(f"subscriber-{uuid.uuid4().hex[:8]}", exclusive=True)
        await subscriber.bind(STATES, routing_key="survival.#")
        await channel.exchange_delete(DEAD)

        caplog.set_level(logging.WARNING, logger="baton_server.broker.outbox")
        unroutable = OutboxMessage(RUNS, "no-pool.no-queue", uuid.uuid4(), b"{}", mandatory=True)
        await _add(ctx, unroutable)

        async def park_failed() -> bool:
            return any("outbox publish failed" in r.getMessage() for r in caplog.records)

        await eventually(park_failed, what="the failed park logged")
        assert await _outbox_count(ctx) == 1  # kept for the sweeper, not lost
        assert ctx.outbox.running

        # baton.dead comes back (as every service declares it at start): the row is parked
        dead = await channel.declare_exchange(DEAD, aio_pika.ExchangeType.FANOUT, durable=True)
        dead_queue = await channel.get_queue(DEAD_QUEUE)
        await dead_queue.bind(dead, routing_key="")

        async def parked() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await dead_queue.get(fail=False, no_ack=True)

        message = await eventually(parked, what="the unroutable row parked in baton.dead")
        assert message is not None
        assert message.message_id == str(unroutable.message_id)
        assert str(message.headers[DeadLetterHeaders.REASON]).startswith("unroutable")
        await eventually(lambda: _no_rows(ctx), what="the outbox empty")

        # the publishing task still sends fresh rows (the sweeper would wait an hour)
        fresh = OutboxMessage(STATES, "survival.fresh", uuid.uuid4(), b"{}")
        await _add(ctx, fresh)

        async def delivered() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await subscriber.get(fail=False, no_ack=True)

        got = await eventually(delivered, what="a fresh row published after the failure")
        assert got is not None
        assert got.message_id == str(fresh.message_id)

        await ctx.close()
        closed = True
        assert ctx.pool.is_closing() and ctx.api_pool.is_closing()
        assert not ctx.link.up.is_set()
        assert not ctx.outbox.running
    finally:
        if not closed:
            await ctx.close()
        await outside.close()


async def _no_rows(ctx: ServerContext) -> bool:
    return await _outbox_count(ctx) == 0


def _failing_after(close: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """`close` really done, then an error: the part is closed, but its close still raises."""

    async def failing(*args: object, **kwargs: object) -> None:
        await close(*args, **kwargs)
        raise RuntimeError("this part failed to close")

    return failing


@pytest.mark.parametrize("failing", ["the outbox", "the broker"])
async def test_the_context_closes_every_part_when_one_fails_to_close(
    failing: str,
    own_backends: Backends,
    server_settings: ServerSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = server_settings.model_copy(
        update={"database_url": own_backends.database_url, "broker_url": own_backends.broker_url}
    )
    ctx = await ServerContext.open(settings, name="baton-close-survival")
    try:
        if failing == "the outbox":
            monkeypatch.setattr(ctx.outbox, "stop", _failing_after(ctx.outbox.stop))
        else:
            monkeypatch.setattr(ctx.broker, "close", _failing_after(ctx.broker.close))
        caplog.set_level(logging.ERROR, logger="baton_server.context")

        # bounded here so that a close that hangs fails this test with its own message
        await asyncio.wait_for(ctx.close(), timeout=30)

        assert [r.getMessage() for r in caplog.records] == [f"closing {failing} failed; closing the rest"]
        assert not ctx.outbox.running
        assert not ctx.link.up.is_set()
        with pytest.raises(ConnectionClosed):
            ctx.link.connection  # noqa: B018 (the property raises once the connection is closed)
        assert ctx.api_pool.is_closing()
        assert ctx.pool.is_closing()
    finally:
        await ctx.link.close()  # idempotent: only does something if the test failed before it
        ctx.api_pool.terminate()
        ctx.pool.terminate()
