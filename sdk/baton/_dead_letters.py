"""The messages parked in `baton.dead`: list them with why they are there, send them back where
they came from, or drop them. Talks to the broker directly, so it works with the server down.

Baton's own consumers park a message with `x-baton-dead-reason` and `x-baton-original-*`
headers; the broker's dead-lettering (a delivery limit reached, an RPC expired) leaves `x-death`.
Both are understood. Browsing takes messages without acknowledging them and gives them back, so
`ls` changes nothing; `replay` and `drop` acknowledge only the messages they were asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from baton_schemas.envelopes import DeadLetterHeaders
from baton_schemas.topology import DEAD_QUEUE

from ._transport._connect import connect_robust

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


def _letter(message: AbstractIncomingMessage) -> DeadLetter:
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
        parked=message.timestamp,
        body=message.body,
        headers=headers,
    )


@contextlib.asynccontextmanager
async def _dead_queue(url: str) -> AsyncIterator[tuple[AbstractChannel, aio_pika.abc.AbstractQueue, int]]:
    try:
        connection = await connect_robust(url, name="baton-dead-letters", timeout=10)
    except Exception as exc:
        raise DeadLetterError(f"cannot connect to the broker: {exc}") from exc
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
        except aio_pika.exceptions.ChannelClosed as exc:
            raise DeadLetterError(f"no {DEAD_QUEUE} queue on this broker: has a Baton server run?") from exc
        count = queue.declaration_result.message_count or 0
        yield channel, queue, count


async def _each(
    url: str, handle: Callable[[AbstractChannel, AbstractIncomingMessage], Any], limit: int | None = None
) -> None:
    """Take up to `limit` parked messages (all of them by default), oldest first, and hand each to
    `handle`, which acknowledges those it is done with. Closing the channel gives back the rest,
    unchanged."""
    async with _dead_queue(url) as (channel, queue, count):
        for _ in range(count if limit is None else min(limit, count)):
            message = await queue.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            await handle(channel, message)


async def list_dead_letters(url: str, *, limit: int = 100) -> list[DeadLetter]:
    letters: list[DeadLetter] = []

    async def keep(_: AbstractChannel, message: AbstractIncomingMessage) -> None:
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

    async def replay(channel: AbstractChannel, message: AbstractIncomingMessage) -> None:
        letter = _letter(message)
        if message_ids is not None and letter.message_id not in message_ids:
            return
        headers = {k: v for k, v in letter.headers.items() if k not in _PARKING_HEADERS}
        headers[REPLAYED_HEADER] = int(letter.headers.get(REPLAYED_HEADER) or 0) + 1
        copy = aio_pika.Message(
            letter.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.message_id,
            type=message.type,
            app_id=message.app_id,
            delivery_mode=message.delivery_mode or aio_pika.DeliveryMode.PERSISTENT,
            # an RPC's caller is long gone: its reply address would only bounce
            correlation_id=message.correlation_id,
        )
        try:
            exchange = await channel.get_exchange(letter.exchange, ensure=False)
            await exchange.publish(copy, routing_key=letter.routing_key, mandatory=True, timeout=10)
        except Exception as exc:
            outcome.failed[letter.message_id] = f"{type(exc).__name__}: {exc}"
            return
        await message.ack()
        outcome.done.append(letter.message_id)

    await _each(url, replay)
    return outcome


async def drop_dead_letters(url: str, message_ids: Collection[str] | None) -> Outcome:
    """Remove the chosen messages (all with None) from `baton.dead` for good."""
    outcome = Outcome([], {})

    async def drop(_: AbstractChannel, message: AbstractIncomingMessage) -> None:
        if message_ids is None or (message.message_id or "") in message_ids:
            await message.ack()
            outcome.done.append(message.message_id or "")

    await _each(url, drop)
    return outcome
