"""Result persistence: where a run's value is written (a store) and how (a serializer).

A persisted result is referred to from `State.data` by a small JSON reference:
`{"storage": "local", "key": "...", "serializer": "pickle"}`, so the server never holds values.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

REF_KIND = "baton-result"


@runtime_checkable
class Serializer(Protocol):
    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """Any picklable value. The default."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer:
    """JSON-compatible values only; readable by other languages and by people."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


_SERIALIZERS: dict[str, type[PickleSerializer] | type[JSONSerializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
}


def resolve_serializer(value: str | Serializer | None, default: str = "pickle") -> Serializer:
    if value is None:
        value = default
    if isinstance(value, str):
        try:
            return _SERIALIZERS[value]()
        except KeyError:
            raise ValueError(
                f"Unknown result serializer {value!r}; use one of {sorted(_SERIALIZERS)} "
                "or an object with `name`, `dumps` and `loads`."
            ) from None
    return value


@runtime_checkable
class ResultStore(Protocol):
    """Where persisted results (and the task cache index next to them) live."""

    kind: str

    def write(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


class LocalResultStore:
    """A folder: one file per key, written atomically (temp file + rename)."""

    kind = "local"

    def __init__(self, basepath: str | os.PathLike[str]) -> None:
        self.basepath = Path(basepath).expanduser()

    def __repr__(self) -> str:
        return f"LocalResultStore({str(self.basepath)!r})"

    def _path(self, key: str) -> Path:
        path = (self.basepath / key).resolve()
        if self.basepath.resolve() not in path.parents:
            raise ValueError(f"Result key {key!r} escapes the result folder")
        return path

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def as_store(value: ResultStore | str) -> ResultStore:
    """The store a flow's or task's `result_storage` names: a folder, or a store itself."""
    return LocalResultStore(value) if isinstance(value, str) else value


# The runtime's store, once one is configured (`baton._runtime` sets it): where results are read
# from when no store is named.
_default_store: ResultStore | None = None


def use_default_store(store: ResultStore | None) -> None:
    global _default_store
    _default_store = store


def default_store() -> ResultStore:
    """The runtime's store; without a runtime, the one the settings name (as a runtime would)."""
    store = _default_store
    if store is None:
        # pydantic-settings loads only here: `task_input_hash` is imported where tasks are defined
        from ._settings import ClientSettings

        store = LocalResultStore(ClientSettings.load().resolved_results_dir())
    return store


def persist(value: Any, store: ResultStore, serializer: Serializer, key: str | None = None) -> dict[str, Any]:
    """Write `value` and return the JSON reference that goes in `State.data`."""
    key = key or uuid.uuid4().hex
    store.write(key, serializer.dumps(value))
    return {"kind": REF_KIND, "storage": store.kind, "key": key, "serializer": serializer.name}


def is_result_ref(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == REF_KIND


def load(ref: dict[str, Any], store: ResultStore, serializer: Serializer | None = None) -> Any:
    """Read back a value written by `persist`."""
    serializer = serializer or resolve_serializer(ref.get("serializer"))
    return serializer.loads(store.read(ref["key"]))
