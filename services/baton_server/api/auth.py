"""API keys: random secrets shown once, stored as SHA-256 digests, with ordered scopes.

Keys carry 192 bits of randomness, so a fast digest is enough (no password stretching needed);
a short in-process cache keeps the database off the hot path of every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import asyncpg

from ..db.types import Connection

KEY_PREFIX = "baton_"
_CACHE_SECONDS = 10.0


class Scope(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Scope:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown scope {name!r}: use read, write or admin") from None


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    scope: Scope


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(conn: Connection, *, name: str, scope: Scope) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret, which is never stored or shown again."""
    public = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(24)}"
    key_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO api_keys (id, name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4, $5)",
        key_id,
        name,
        f"{KEY_PREFIX}{public}",
        digest(secret),
        [scope.name.lower()],
    )
    return ApiKey(key_id, name, scope), secret


class KeyVerifier:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def verify(self, secret: str) -> ApiKey | None:
        hashed = digest(secret)
        now = time.monotonic()
        cached = self._cache.get(hashed)
        if cached is not None and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        row = await self._pool.fetchrow(
            "SELECT id, name, scopes FROM api_keys WHERE key_hash = $1 AND NOT revoked", hashed
        )
        key = ApiKey(row["id"], row["name"], max(Scope.parse(s) for s in row["scopes"])) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[hashed] = (now, key)
        return key
