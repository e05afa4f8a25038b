"""FastAPI dependencies, as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..context import ServerContext
from .auth import ApiKey, KeyVerifier, Scope


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


async def get_conn(ctx: Ctx) -> AsyncIterator[Any]:  # FastAPI evaluates this at runtime
    async with ctx.pool.acquire() as conn:
        yield conn


Conn = Annotated[asyncpg.Connection, Depends(get_conn)]  # type: ignore[type-arg]


def _require(scope: Scope) -> Any:
    async def check(request: Request, ctx: Ctx) -> ApiKey | None:
        if not ctx.settings.auth_required:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "an API key is required: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        verifier: KeyVerifier = request.app.state.keys
        key = await verifier.verify(secret.strip())
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown or revoked API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if key.scope < scope:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this key has scope {key.scope.name.lower()}; this needs {scope.name.lower()}",
            )
        return key

    return Depends(check)


CanRead = Annotated[ApiKey | None, _require(Scope.READ)]
CanWrite = Annotated[ApiKey | None, _require(Scope.WRITE)]
IsAdmin = Annotated[ApiKey | None, _require(Scope.ADMIN)]


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
