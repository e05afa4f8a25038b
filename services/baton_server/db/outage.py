"""Which errors mean "the database is away" (not a bug, not the request's fault)."""

from __future__ import annotations

import asyncpg

# the database went away, refuses connections, is shutting down, or did not answer in time
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)


def database_down(exc: BaseException) -> bool:
    """True if `exc` says the database cannot be reached now (a pool that cannot lend a
    connection in time counts: TimeoutError)."""
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc).lower()
        return "closed" in text or "connection" in text
    return isinstance(exc, (*DATABASE_DOWN, TimeoutError))
