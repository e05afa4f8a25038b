"""What the API answers when a request fails for a reason that is not a bug of Baton's.

- The database (or the broker) is unavailable, or too busy to lend a connection in time: 503
  with Retry-After, never 500, so clients back off and try again (the SDK does).
- Text PostgreSQL cannot store (a NUL character somewhere no model refused it first): 422.

Everything else is a bug and stays a 500.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from baton._amqp import AmqpError

from .deps import DatabaseBusy
from .gate import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)

# the database went away, refuses connections, is shutting down, or did not answer in time
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)
BROKER_DOWN: tuple[type[Exception], ...] = (AmqpError,)
UNSTORABLE_TEXT: tuple[type[Exception], ...] = (
    asyncpg.CharacterNotInRepertoireError,  # a NUL in text: 'invalid byte sequence ... 0x00'
    asyncpg.UntranslatableCharacterError,  # a \u0000 in JSON
)


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    return unavailable("the API is busy: no database connection came free in time; retry later")


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, asyncpg.InterfaceError) and not _connection_lost(exc):
        raise exc  # a programming error: a real 500
    log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
    return unavailable("the database is unavailable; retry later")


async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: timed out: %r", request.method, request.url.path, exc)
    return unavailable("the database or the message broker did not answer in time; retry later")


async def _broker_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: message broker unavailable: %r", request.method, request.url.path, exc)
    return unavailable("the message broker is unavailable; retry later")


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "the request holds text that cannot be stored: a NUL character (\\u0000)"},
        status_code=422,
    )


def _connection_lost(exc: asyncpg.InterfaceError) -> bool:
    text = str(exc).lower()
    return "closed" in text or "connection" in text


def install(app: FastAPI) -> None:
    app.add_exception_handler(DatabaseBusy, _database_busy)
    app.add_exception_handler(TimeoutError, _timed_out)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    for kind in BROKER_DOWN:
        app.add_exception_handler(kind, _broker_down)
    for kind in UNSTORABLE_TEXT:
        app.add_exception_handler(kind, _unstorable)
