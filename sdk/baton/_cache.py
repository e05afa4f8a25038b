"""Task caching: cache keys (`task_input_hash`) and the cache index stored next to the results.

The index has one small JSON file per cache key (`cache/{sha256(key)}.json`) holding the result
reference and the expiry, so any process that shares the result folder shares the cache.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._results import ResultStore, is_result_ref

if TYPE_CHECKING:
    from ._context import TaskRunContext

CACHE_FOLDER = "cache"


def hash_objects(*objects: Any) -> str | None:
    """A stable hash of JSON-able (else picklable) objects; None when neither works."""
    try:
        payload = json.dumps(objects, sort_keys=True, default=_json_fallback).encode()
    except (TypeError, ValueError):
        try:
            payload = pickle.dumps(objects, protocol=4)
        except Exception:
            return None
    return hashlib.sha256(payload).hexdigest()


class _NotJSON(TypeError):
    pass


def _json_fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.hex()
    raise _NotJSON(type(value).__name__)


def task_input_hash(context: TaskRunContext, arguments: dict[str, Any]) -> str | None:
    """Cache key of a task run: the task's identity and code, and its arguments.

    Use as `@task(cache_key_fn=task_input_hash)`. Returns None (no caching) when the arguments
    can be neither JSON-encoded nor pickled.
    """
    fn = context.task.fn
    code = getattr(fn, "__code__", None)
    return hash_objects(context.task.task_key, code.co_code.hex() if code else "", arguments)


class CacheIndex:
    def __init__(self, store: ResultStore) -> None:
        self.store = store

    @staticmethod
    def _key(cache_key: str) -> str:
        return f"{CACHE_FOLDER}/{hashlib.sha256(cache_key.encode()).hexdigest()}.json"

    @staticmethod
    def result_key(cache_key: str) -> str:
        """Where the result of a cached run is written: the same key always overwrites."""
        return f"cached-{hashlib.sha256(cache_key.encode()).hexdigest()}"

    def lookup(self, cache_key: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The result reference cached under `cache_key`, if present and not expired."""
        try:
            entry = json.loads(self.store.read(self._key(cache_key)))
        except (FileNotFoundError, ValueError, KeyError):
            return None
        if entry.get("cache_key") != cache_key or not is_result_ref(entry.get("result")):
            return None
        expires = entry.get("expires")
        if expires is not None and datetime.fromisoformat(expires) <= (now or datetime.now(UTC)):
            return None
        if not self.store.exists(entry["result"]["key"]):
            return None
        result: dict[str, Any] = entry["result"]
        return result

    def record(self, cache_key: str, ref: dict[str, Any], expiration: timedelta | None) -> None:
        now = datetime.now(UTC)
        entry = {
            "cache_key": cache_key,
            "result": ref,
            "created": now.isoformat(),
            "expires": (now + expiration).isoformat() if expiration is not None else None,
        }
        self.store.write(self._key(cache_key), json.dumps(entry).encode())
