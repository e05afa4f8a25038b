"""Task caching: cache keys (`task_input_hash`, the cache policies of `baton.cache_policies`)
and the cache index stored next to the results.

The index has one small JSON file per cache key (`cache/{sha256(key)}.json`) holding the result
reference and the expiry, so any process that shares the result folder shares the cache.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
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


# --- cache policies (see baton.cache_policies) ---------------------------------------------


def _hash(*objects: Any) -> str | None:
    return hash_objects(*objects)


class CachePolicy:
    """What a cache key is computed from; `+` combines policies."""

    caches = True  # NO_CACHE: False

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache):
            return self
        if isinstance(self, _NoCache):
            return other
        mine = self.policies if isinstance(self, CompoundCachePolicy) else [self]
        theirs = other.policies if isinstance(other, CompoundCachePolicy) else [other]
        return CompoundCachePolicy(policies=[*mine, *theirs])

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be taken out of a cache policy")
        return self


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: list[CachePolicy] = field(default_factory=list)

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        keys = [p.compute_key(task_ctx, inputs, flow_parameters) for p in self.policies]
        found = sorted(key for key in keys if key is not None)
        return _hash(*found) if found else None

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be taken out of a cache policy")
        return CompoundCachePolicy(policies=[p - name for p in self.policies])


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A `cache_key_fn(context, arguments)` as a policy."""

    cache_key_fn: Callable[[Any, dict[str, Any]], str | None]

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        return self.cache_key_fn(task_ctx, inputs)


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task's arguments (but those in `exclude`)."""

    exclude: tuple[str, ...] = ()

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        kept = {name: value for name, value in inputs.items() if name not in self.exclude}
        if not kept:
            return None
        key = _hash(kept)
        if key is None:
            kinds = ", ".join(sorted({f"{n}: {type(v).__name__}" for n, v in kept.items()}))
            raise ValueError(
                f"the task's arguments ({kinds}) cannot be hashed (neither JSON nor pickle); "
                "this happens with locks, open files and other live resources. Leave the "
                'argument out (cache_policy=INPUTS - "name"), write a cache_key_fn, or use '
                "cache_policy=NO_CACHE"
            )
        return key

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only argument names (strings) can be taken out of a cache policy")
        return Inputs(exclude=(*self.exclude, name))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task's source code (its bytecode when the source is not available)."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        fn = task_ctx.task.fn
        try:
            text = inspect.getsource(fn)
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)  # no source (made by exec): its code and constants
            text = code.co_code.hex() + repr(code.co_consts) if code is not None else task_ctx.task.task_key
        return _hash(task_ctx.task.task_key, text)


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The parameters of the flow run the task belongs to."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        return _hash(flow_parameters) if flow_parameters else None


@dataclass(frozen=True)
class RunId(CachePolicy):
    """The flow run (a cache shared by the task runs of one run, and its retries)."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        run_id = task_ctx.task_run.flow_run_id
        return str(run_id) if run_id is not None else None


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    caches = False

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        return None


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = _NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


def policy_key(policy: CachePolicy, context: Any, arguments: dict[str, Any]) -> str | None:
    """The cache key a policy gives a task run (raises ValueError for unhashable arguments)."""
    flow_ctx = getattr(context, "flow_run_context", None)
    parameters = dict(flow_ctx.flow_run.parameters) if flow_ctx is not None else {}
    return policy.compute_key(context, dict(arguments), parameters)
