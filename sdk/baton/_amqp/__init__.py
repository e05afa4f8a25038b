"""Baton's own AMQP 0-9-1 client for the hot paths (see `connection`)."""

from .address import Address, login_user
from .channel import Channel, Delivery
from .codec import PERSISTENT, TRANSIENT, Properties
from .connection import Connection
from .errors import (
    AmqpError,
    CallTimeout,
    ChannelClosed,
    ConnectionClosed,
    Nacked,
    Returned,
    TlsRefused,
    WriteBufferFull,
)
from .link import Link

__all__ = [
    "PERSISTENT",
    "TRANSIENT",
    "Address",
    "AmqpError",
    "CallTimeout",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionClosed",
    "Delivery",
    "Link",
    "Nacked",
    "Properties",
    "Returned",
    "TlsRefused",
    "WriteBufferFull",
    "login_user",
]
