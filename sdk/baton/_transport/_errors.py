"""Errors shared by the transports: retry `TransportUnavailable`, never `RequestRejected`."""

from __future__ import annotations


class TransportError(Exception):
    """Talking to Baton failed."""


class TransportUnavailable(TransportError):
    """Baton could not be reached or answered 'try later' (connection, timeout, 5xx, 429).
    Safe to retry: every request the SDK sends is idempotent."""


class TransportGone(TransportUnavailable):
    """The way to Baton is gone for good: the worker that relayed for this process has exited.
    Not retried, even for a final state (nothing could carry it now)."""


class RequestRejected(TransportError):
    """Baton refused the request (4xx): retrying the same request won't help."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {detail}")
