"""Opening a robust RabbitMQ connection without leaking it when the first attempt fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection


async def connect_robust(url: str, *, name: str, timeout: float = 10.0) -> AbstractRobustConnection:
    """`aio_pika.connect_robust`, but a first connect that fails closes what it opened: aio-pika
    leaves that connection object to its `__del__`, which schedules an unawaited `close()`."""
    import aio_pika
    from aio_pika.connection import make_url

    connection = aio_pika.RobustConnection(make_url(url), client_properties={"connection_name": name})
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        await connection.close()
        raise
    return connection
