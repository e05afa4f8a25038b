"""What can fail on a broker connection; every error is an `AmqpError`."""

from __future__ import annotations


class AmqpError(Exception):
    """Something failed on the broker connection."""


class ConnectionClosed(AmqpError):
    """The connection is gone (closed by either side, or the socket broke)."""


class TlsRefused(AmqpError):
    """The TLS handshake with the broker failed: its certificate did not verify against the URL's
    `cafile`/`capath` (or the system's CAs), or the broker refused ours."""


class ChannelClosed(AmqpError):
    """The broker closed the channel, or it was closed by us."""

    # the reply code of a declaration that differs from what exists (other queue arguments)
    PRECONDITION_FAILED = 406

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


class CallTimeout(AmqpError, TimeoutError):
    """A synchronous method got no reply in time. Its channel is closed: a reply that came
    later would be taken for the answer to the next call."""


class WriteBufferFull(AmqpError):
    """More is waiting to be written than the connection's bound: the publisher did not wait
    for `Channel.writable()` while the socket (or a blocked broker) held the writes back."""


class Returned(AmqpError):
    """A `mandatory` message no queue took: the broker sent it back."""

    def __init__(self, code: int, text: str, exchange: str, routing_key: str) -> None:
        super().__init__(f"returned: {code} {text} (exchange {exchange!r}, routing key {routing_key!r})")
        self.code = code
        self.text = text
        self.exchange = exchange
        self.routing_key = routing_key


class Nacked(AmqpError):
    """The broker refused to take responsibility for a message (publisher confirm nack)."""
