"""What a channel needs of the connection it runs on: a way to write frames, the limits and state
that bound those writes, and a way to be forgotten when it closes. `Connection` provides it; the
channel depends on this shape alone, so the two modules do not import each other."""

from __future__ import annotations

import asyncio
from typing import Protocol

from .errors import AmqpError


class Wire(Protocol):
    name: str
    frame_max: int
    call_timeout: float
    max_buffer: int
    loop: asyncio.AbstractEventLoop
    closed: asyncio.Future[AmqpError]

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the socket."""
        ...

    @property
    def can_write(self) -> bool:
        """True when `writable()` would return at once and writes would be taken."""
        ...

    def holding_back(self) -> str:
        """Why writes wait ("" when they do not)."""
        ...

    async def writable(self, *, timeout: float | None = None) -> None:
        """Wait until writes may go."""
        ...

    def write(self, data: bytes) -> None:
        """Queue frames for the socket."""
        ...

    def forget(self, number: int) -> None:
        """Drop a closed channel's number."""
        ...
