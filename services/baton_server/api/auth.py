"""API keys: random secrets shown once, stored as SHA-256 digests, each with a set of scopes.

Keys carry 192 bits of randomness, so a fast digest is enough (no password stretching needed).
What each scope allows (README, `baton api-key create --help`):

- read: read everything (runs, logs, deployments, pools, workers);
- events: emit events, nothing else;
- run: start, cancel and retry runs of existing deployments, backfill; read the deployments and
  runs it starts;
- worker: claim runs, report their states, task runs, logs and heartbeats; read its work pool and
  queues, and the runs it executes;
- deploy: create or change deployments, schedules, automations, webhooks, pools, queues,
  variables, and job variables on runs: this decides what code workers execute;
- admin: everything, including API keys, dead-letter replay and the audit log.

Keys made before scopes were split (read < write < admin) were migrated (0007): read -> read,
admin -> admin, write -> read, events, run, worker, deploy (what a write key could do before).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import asyncpg

from ..db.types import Connection

KEY_PREFIX = "baton_"


class Scope(StrEnum):
    READ = "read"
    EVENTS = "events"
    RUN = "run"
    WORKER = "worker"
    DEPLOY = "deploy"
    ADMIN = "admin"

    @classmethod
    def parse(cls, name: str) -> Scope:
        try:
            return cls(name.strip().lower())
        except ValueError:
            raise ValueError(f"unknown scope {name!r}: use {', '.join(s.value for s in cls)}") from None


# what a key of the old `write` scope could do, and what `--scope write` still means
LEGACY_WRITE = frozenset({Scope.READ, Scope.EVENTS, Scope.RUN, Scope.WORKER, Scope.DEPLOY})


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scope names as given on the command line or in a request; `write` is the old name of
    read + events + run + worker + deploy."""
    scopes: set[Scope] = set()
    for name in names:
        scopes |= LEGACY_WRITE if name.strip().lower() == "write" else {Scope.parse(name)}
    if not scopes:
        raise ValueError("give at least one scope")
    return frozenset(scopes)


def scope_list(scopes: Iterable[Scope]) -> list[str]:
    """In the order of the enum, for display and storage."""
    chosen = set(scopes)
    return [s.value for s in Scope if s in chosen]


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: uuid.UUID
    name: str
    scopes: frozenset[Scope]

    def allows(self, *any_of: Scope) -> bool:
        """Whether this key holds one of `any_of` (an admin key holds them all)."""
        return Scope.ADMIN in self.scopes or not self.scopes.isdisjoint(any_of)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_NAMES = frozenset(s.value for s in Scope)


def key_from_row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(row["id"], row["name"], frozenset(Scope(s) for s in row["scopes"] if s in _NAMES))


async def create_api_key(conn: Connection, *, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret, which is never stored or shown again."""
    chosen = frozenset(scopes)
    if not chosen:
        raise ValueError("give at least one scope")
    public = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(24)}"
    key_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO api_keys (id, name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4, $5)",
        key_id,
        name,
        f"{KEY_PREFIX}{public}",
        digest(secret),
        scope_list(chosen),
    )
    return ApiKey(key_id, name, chosen), secret


async def revoke_api_key(conn: Connection, key_id: uuid.UUID) -> bool:
    """Revoke a key; False if there is no such key (or it was revoked already)."""
    result = await conn.execute(
        "UPDATE api_keys SET revoked = true, revoked_at = now() WHERE id = $1 AND NOT revoked", key_id
    )
    return not result.endswith(" 0")


async def list_api_keys(conn: Connection, *, include_revoked: bool = False) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT id, name, prefix, scopes, created, revoked, revoked_at FROM api_keys
               WHERE $1 OR NOT revoked ORDER BY created""",
            include_revoked,
        )
    )
