"""A worker's control queue: cancel and suspend messages for the runs it has.

The queue is the worker's own (exclusive, so it goes with the connection), bound on
`baton.control` to the worker's key and to each run it claims; after a reconnect it is declared
and bound again."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from uuid import UUID

from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from baton_schemas.envelopes import ControlMessage
from baton_schemas.topology import CONTROL, flow_run_control_key, worker_control_key, worker_control_queue

from .._amqp import AmqpError, Channel, Connection, Delivery

logger = logging.getLogger("baton.worker")


class ControlQueue:
    def __init__(self, worker_id: str, on_control: Callable[[ControlMessage], None]) -> None:
        self._queue = worker_control_queue(worker_id)
        self._on_control = on_control
        self._channel: Channel | None = None
        self._keys = {worker_control_key(worker_id)}

    async def open(self, connection: Connection) -> None:
        """Declare the queue on `connection`, bind it to every key, and consume it."""
        channel = await connection.channel()
        queue, _, _ = await channel.declare_queue(self._queue, exclusive=True, auto_delete=True)
        for key in list(self._keys):
            await channel.bind_queue(queue, CONTROL, key)
        await channel.consume(queue, self._deliver, no_ack=True)
        self._channel = channel

    async def restore(self, connection: Connection, stopping: Callable[[], bool]) -> None:
        """After a reconnect: open it again, retrying until it is open, the connection is gone
        (the next reconnect restores it) or the worker stops."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((AmqpError, OSError, TimeoutError)),
            wait=wait_random_exponential(multiplier=0.5, max=10.0),
            reraise=True,
        ):
            with attempt:
                if connection.closed.done() or stopping():
                    return
                await self.open(connection)

    async def listen(self, run_id: UUID) -> None:
        key = flow_run_control_key(run_id)
        self._keys.add(key)  # bound again after a reconnect
        if self._channel is not None and self._channel.is_open:
            await self._channel.bind_queue(self._queue, CONTROL, key)

    async def unlisten(self, run_id: UUID) -> None:
        key = flow_run_control_key(run_id)
        self._keys.discard(key)
        if self._channel is not None and self._channel.is_open:
            with contextlib.suppress(AmqpError):
                await self._channel.unbind_queue(self._queue, CONTROL, key)

    def _deliver(self, message: Delivery) -> None:
        try:
            control = ControlMessage.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("Ignoring an unreadable control message: %s", exc)
            return
        self._on_control(control)
