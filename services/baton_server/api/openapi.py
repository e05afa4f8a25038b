"""The OpenAPI document says, for each operation, which scopes its key needs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from .auth import Scope, scope_list

BEARER = {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key: baton_..."}}


def route_scopes(dependant: Dependant) -> frozenset[Scope] | None:
    """The scopes a route's dependencies ask for (any one of them will do), if any."""
    for dependency in dependant.dependencies:
        wanted = getattr(dependency.call, "baton_scopes", None)
        if wanted is not None:
            return frozenset(wanted)
        if (nested := route_scopes(dependency)) is not None:
            return nested
    return None


def document_scopes(app: FastAPI, schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(BEARER)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path_format is None:
            continue
        scopes = route_scopes(route.dependant)
        if scopes is None:
            continue
        operations = schema.get("paths", {}).get(context.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            names = scope_list(scopes)
            operation["security"] = [{"bearer": []}]
            operation["x-baton-scopes"] = names
            needs = " or ".join(f"`{n}`" for n in names)
            note = f"Needs a key with scope {needs} (an `admin` key has every scope)."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
