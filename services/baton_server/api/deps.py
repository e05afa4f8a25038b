"""FastAPI dependencies, as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..context import ServerContext
from .auth import ApiKey, Scope, scope_list
from .gate import KEY_STATE


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


class DatabaseBusy(Exception):
    """No API connection came free within `db_acquire_timeout_seconds`: answered 503."""


async def get_conn(ctx: Ctx) -> AsyncIterator[Any]:  # FastAPI evaluates this at runtime
    """A connection of the API's own pool, for the request. The key was checked before (the
    gate needs no connection), so a request never holds two."""
    try:
        conn = await ctx.api_pool.acquire(timeout=ctx.settings.db_acquire_timeout_seconds)
    except TimeoutError as exc:
        raise DatabaseBusy from exc
    try:
        yield conn
    finally:
        await ctx.api_pool.release(conn)


Conn = Annotated[asyncpg.Connection, Depends(get_conn)]  # type: ignore[type-arg]


def _describe(scopes: frozenset[Scope]) -> str:
    return ", ".join(scope_list(scopes)) or "none"


def needs(*any_of: Scope) -> Any:
    """A dependency: the request's key (from the gate) if it holds one of `any_of`, else 403.
    None when the server runs without authentication."""
    wanted = frozenset(any_of)

    async def check(request: Request, ctx: Ctx) -> ApiKey | None:
        if not ctx.settings.auth_required:
            return None
        key: ApiKey | None = getattr(request.state, KEY_STATE, None)
        if key is None:  # a route under a public prefix that still asks for scopes
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "an API key is required: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not key.allows(*wanted):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this key has scope {_describe(key.scopes)}; this needs {' or '.join(scope_list(wanted))}",
            )
        return key

    check.baton_scopes = wanted  # type: ignore[attr-defined]  # read by the OpenAPI document
    return Depends(check)


def require(key: ApiKey | None, scope: Scope, why: str) -> None:
    """Inside a route: refuse (403) a key without `scope` for what the request asks, saying why."""
    if key is not None and not key.allows(scope):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{why} needs a key with scope {scope.value} (this one has {_describe(key.scopes)})",
        )


# One alias per scope. A key holds a set of scopes; admin holds them all.
CanRead = Annotated[ApiKey | None, needs(Scope.READ)]
CanEmit = Annotated[ApiKey | None, needs(Scope.EVENTS)]
CanRun = Annotated[ApiKey | None, needs(Scope.RUN)]
IsWorker = Annotated[ApiKey | None, needs(Scope.WORKER)]
CanDeploy = Annotated[ApiKey | None, needs(Scope.DEPLOY)]
IsAdmin = Annotated[ApiKey | None, needs(Scope.ADMIN)]
# TEMPORARY, for routes written against the old ranked scopes (read < write < admin): `write`
# means deploy until each such route is given the scope it needs. Do not use in new code.
CanWrite = CanDeploy


M = TypeVar("M", bound=BaseModel)


def raw_json_body(model: type[M]) -> Any:
    """A body parsed straight from bytes by pydantic (no `json.loads` and second pass): for the
    hot batch endpoints. Errors are the usual 422 with `loc` starting at "body"."""

    async def parse(request: Request) -> M:
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from exc

    return Depends(parse)


def raw_body_definitions(models: list[type[BaseModel]]) -> dict[str, Any]:
    """The component schemas that bodies documented by `body_schema` refer to."""
    definitions: dict[str, Any] = {}
    for model in models:
        definitions.update(model.model_json_schema(ref_template=_REF).get("$defs", {}))
    return definitions


_REF = "#/components/schemas/{model}"


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body read by `raw_json_body` (see raw_body_definitions)."""
    schema = model.model_json_schema(ref_template=_REF)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {k: v for k, v in schema.items() if k != "$defs"}}},
        }
    }
