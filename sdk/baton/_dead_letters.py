"""The messages parked in `baton.dead`: list them with why they are there, send them back where
they came from, or drop them. Talks to the broker directly, so it works with the server down.

Baton's own consumers park a message with `x-baton-dead-reason` and `x-baton-original-*`
headers; the broker's dead-lettering (a delivery limit reached) leaves `x-death`.
Both are understood. Browsing takes messages without acknowledging them and gives them back, so
`ls` changes nothing; `replay` and `drop` acknowledge only the messages they were asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD_QUEUE

from ._amqp import PERSISTENT, AmqpError, Channel, ChannelClosed, Connection, Delivery

_TIMEOUT = 10.0

REPLAYED_HEADER = "x-baton-replayed"
_PARKING_HEADERS = {
    DeadLetterHeaders.REASON,
    DeadLetterHeaders.ORIGINAL_EXCHANGE,
    DeadLetterHeaders.ORIGINAL_ROUTING_KEY,
    DeadLetterHeaders.ORIGINAL_QUEUE,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
}


class DeadLetterError(Exception):
    """The broker is unreachable, or `baton.dead` does not exist (no Baton server ever ran)."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str
    exchange: str
    routing_key: str
    queue: str
    parked: datetime | None
    body: bytes
    headers: dict[str, Any]

    @property
    def kind(self) -> str:
        """The envelope's `kind`, when the body is one of Baton's JSON messages."""
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            return str(orjson.loads(self.body).get("kind") or "")
        return ""


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def _letter(message: Delivery) -> DeadLetter:
    headers: dict[str, Any] = dict(message.headers or {})
    if DeadLetterHeaders.ORIGINAL_EXCHANGE in headers:
        exchange = _text(headers.get(DeadLetterHeaders.ORIGINAL_EXCHANGE))
        routing_key = _text(headers.get(DeadLetterHeaders.ORIGINAL_ROUTING_KEY))
        queue = _text(headers.get(DeadLetterHeaders.ORIGINAL_QUEUE))
        reason = _text(headers.get(DeadLetterHeaders.REASON))
    else:  # dead-lettered by the broker itself: the newest death comes first
        deaths: Any = headers.get("x-death")
        death: dict[str, Any] = deaths[0] if isinstance(deaths, list) and deaths else {}
        keys = death.get("routing-keys") or [message.routing_key or ""]
        exchange = _text(death.get("exchange", message.exchange))
        routing_key = _text(keys[0])
        queue = _text(death.get("queue"))
        reason = f"broker: {_text(death.get('reason')) or 'unknown'}"
        if death.get("count"):
            reason += f" (x{death['count']})"
    return DeadLetter(
        message_id=message.message_id or "",
        reason=reason,
        exchange=exchange,
        routing_key=routing_key,
        queue=queue,
        parked=message.properties.timestamp,
        body=message.body,
        headers=headers,
    )


class _Session:
    """One connection: a channel that takes the parked messages (what it has not acknowledged
    goes back when it closes), and one that publishes the replays with confirms, opened again
    after the broker closed it (a message whose exchange no longer exists)."""

    def __init__(self, connection: Connection, taking: Channel) -> None:
        self.connection = connection
        self.taking = taking
        self._publishing: Channel | None = None

    async def publishing(self) -> Channel:
        if self._publishing is None or not self._publishing.is_open:
            self._publishing = await self.connection.channel(confirms=True)
        return self._publishing


Handle = Callable[[_Session, Delivery], Awaitable[None]]


@contextlib.asynccontextmanager
async def _dead_queue(url: str) -> AsyncIterator[tuple[_Session, int]]:
    try:
        connection = await Connection.open(url, name="baton-dead-letters", timeout=_TIMEOUT)
    except (AmqpError, OSError, TimeoutError, ValueError) as exc:
        raise DeadLetterError(f"cannot connect to the broker: {exc}") from exc
    try:
        taking = await connection.channel()
        try:
            _, count, _ = await taking.declare_queue(DEAD_QUEUE, passive=True)
        except ChannelClosed as exc:
            raise DeadLetterError(f"no {DEAD_QUEUE} queue on this broker: has a Baton server run?") from exc
        yield _Session(connection, taking), count
    finally:
        await connection.close()


async def _each(url: str, handle: Handle, limit: int | None = None) -> None:
    """Take up to `limit` parked messages (all of them by default), oldest first, and hand each to
    `handle`, which acknowledges those it is done with. Closing the channel gives back the rest,
    unchanged."""
    async with _dead_queue(url) as (session, count):
        for _ in range(count if limit is None else min(limit, count)):
            message = await session.taking.get(DEAD_QUEUE, timeout=_TIMEOUT)
            if message is None:
                break
            await handle(session, message)


async def list_dead_letters(url: str, *, limit: int = 100) -> list[DeadLetter]:
    letters: list[DeadLetter] = []

    async def keep(_: _Session, message: Delivery) -> None:
        letters.append(_letter(message))

    await _each(url, keep, limit)
    return letters


@dataclass
class Outcome:
    done: list[str]
    failed: dict[str, str]


async def replay_dead_letters(url: str, message_ids: Collection[str] | None) -> Outcome:
    """Publish the chosen messages (all with None) again to their original exchange and routing
    key, confirmed; each is removed from `baton.dead` only once the broker took its copy."""
    outcome = Outcome([], {})

    async def replay(session: _Session, message: Delivery) -> None:
        letter = _letter(message)
        if message_ids is not None and letter.message_id not in message_ids:
            return
        headers = {k: v for k, v in letter.headers.items() if k not in _PARKING_HEADERS}
        headers[REPLAYED_HEADER] = int(letter.headers.get(REPLAYED_HEADER) or 0) + 1
        # as it came, but for the parking headers (and an RPC's reply address: its caller is
        # long gone, a reply would only bounce)
        properties = replace(
            message.properties,
            headers=headers,
            reply_to=None,
            expiration=None,
            delivery_mode=message.properties.delivery_mode or PERSISTENT,
        )
        try:
            async with asyncio.timeout(_TIMEOUT):
                channel = await session.publishing()
                await channel.writable()
                confirmed = channel.publish(
                    letter.exchange, letter.routing_key, letter.body, properties, mandatory=True
                )
                assert confirmed is not None  # a confirm-mode channel
                await confirmed
        except (AmqpError, TimeoutError) as exc:
            outcome.failed[letter.message_id] = f"{type(exc).__name__}: {exc}"
            return
        message.ack()
        outcome.done.append(letter.message_id)

    await _each(url, replay)
    return outcome


async def drop_dead_letters(url: str, message_ids: Collection[str] | None) -> Outcome:
    """Remove the chosen messages (all with None) from `baton.dead` for good."""
    outcome = Outcome([], {})

    async def drop(_: _Session, message: Delivery) -> None:
        if message_ids is None or (message.message_id or "") in message_ids:
            message.ack()
            outcome.done.append(message.message_id or "")

    await _each(url, drop)
    return outcome
