"""Baton's own AMQP 0-9-1 client for the hot paths (see `connection`)."""

from .codec import PERSISTENT, TRANSIENT, Properties
from .connection import (
    AmqpError,
    Channel,
    ChannelClosed,
    Connection,
    ConnectionClosed,
    Delivery,
    Nacked,
    Returned,
)
from .link import Link

__all__ = [
    "PERSISTENT",
    "TRANSIENT",
    "AmqpError",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionClosed",
    "Delivery",
    "Link",
    "Nacked",
    "Properties",
    "Returned",
]
