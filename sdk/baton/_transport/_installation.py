"""One Baton per vhost: the vhost is stamped with the installation id of its database.

The server stamps it at start (declaring `baton.installation` with its id); a worker checks it
with the id the API gave it. A declaration with another id is refused by RabbitMQ, and this
turns that into `OtherInstallation`, whose message is one line naming both ids.
"""

from __future__ import annotations

import re
from uuid import UUID

from baton_schemas.topology import INSTALLATION_QUEUE, installation_queue_arguments

from .._amqp import ChannelClosed, Connection

# RabbitMQ's reply text is at most 255 bytes: with a long vhost name the id may be cut off
_CURRENT = re.compile(r"current is '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")
_INEQUIVALENT = "inequivalent arg 'x-dead-letter-routing-key'"


class OtherInstallation(RuntimeError):
    """The vhost belongs to another Baton installation (another database)."""

    def __init__(self, vhost_id: str | None, ours: UUID, what: str) -> None:
        theirs = f"Baton installation {vhost_id}" if vhost_id else "another Baton installation"
        super().__init__(
            f"this RabbitMQ vhost belongs to {theirs}, but {what} is installation {ours}: one "
            "Baton per vhost (give each its own vhost, or use the other installation's database)"
        )
        self.vhost_id = vhost_id
        self.ours = ours


async def stamp_vhost(connection: Connection, installation_id: UUID, *, what: str = "this database") -> None:
    """Stamp the vhost with `installation_id`, or find it already stamped with it; raise
    `OtherInstallation` if another installation's id is on it."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(
            INSTALLATION_QUEUE, durable=True, arguments=installation_queue_arguments(installation_id)
        )
    except ChannelClosed as exc:
        if exc.code != ChannelClosed.PRECONDITION_FAILED or _INEQUIVALENT not in exc.text:
            raise
        found = _CURRENT.search(exc.text)
        raise OtherInstallation(found.group(1) if found else None, installation_id, what) from None
    await channel.close()
