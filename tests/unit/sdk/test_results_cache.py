"""Result persistence and the task cache (which works across processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from baton import LocalResultStore, flow, task, task_input_hash
from baton._cache import CacheIndex, hash_objects
from baton._results import JSONSerializer, PickleSerializer, persist, resolve_serializer
from baton.states import State, load_result

from .conftest import RecordingReporter


def test_persisted_results_are_referenced_from_the_state(results_dir: Path) -> None:
    @task(persist_result=True)
    def produce() -> dict[str, int]:
        return {"answer": 42}

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": produce(return_state=True)}

    state = pipeline()["state"]
    assert state.data is not None
    assert state.data["storage"] == "local" and state.data["serializer"] == "pickle"
    assert (results_dir / state.data["key"]).exists()
    # a state read back elsewhere has only the reference: load it from the store
    elsewhere = State.model_validate_json(state.model_dump_json())
    assert elsewhere.result() is None
    assert load_result(elsewhere) == {"answer": 42}


def test_json_serializer_and_custom_storage(tmp_path: Path) -> None:
    storage = tmp_path / "elsewhere"

    @task(persist_result=True, result_serializer="json", result_storage=str(storage))
    def produce() -> list[int]:
        return [1, 2, 3]

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": produce(return_state=True)}

    state = pipeline()["state"]
    assert state.data is not None and state.data["serializer"] == "json"
    assert json.loads((storage / state.data["key"]).read_bytes()) == [1, 2, 3]


def test_results_are_not_persisted_by_default(results_dir: Path) -> None:
    @task
    def produce() -> int:
        return 1

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": produce(return_state=True)}

    assert pipeline()["state"].data is None


def test_an_unserializable_result_is_kept_in_memory() -> None:
    @task(persist_result=True, result_serializer="json")
    def produce() -> object:
        return object()

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": produce(return_state=True)}

    state = pipeline()["state"]
    assert state.is_completed() and state.data is None


def test_flow_results_can_be_persisted(results_dir: Path) -> None:
    @flow(persist_result=True)
    def pipeline() -> str:
        return "kept"

    state = pipeline(return_state=True)
    assert state.data is not None
    assert PickleSerializer().loads((results_dir / state.data["key"]).read_bytes()) == "kept"


def test_serializers_and_store() -> None:
    assert resolve_serializer("json").name == "json"
    assert resolve_serializer(None).name == "pickle"
    with pytest.raises(ValueError, match="Unknown result serializer"):
        resolve_serializer("yaml")
    assert JSONSerializer().loads(JSONSerializer().dumps({"a": [1]})) == {"a": [1]}


def test_store_refuses_keys_outside_its_folder(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path)
    with pytest.raises(ValueError):
        store.write("../escape", b"x")
    ref = persist(1, store, PickleSerializer(), "nested/key")
    assert store.exists("nested/key") and ref["key"] == "nested/key"


def test_a_cache_hit_ends_cached_without_running(reporter: RecordingReporter) -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 100

    @flow
    def pipeline(x: int) -> int:
        return expensive(x)

    assert pipeline(1) == 100
    assert pipeline(1) == 100  # a second flow run: cached
    assert pipeline(2) == 200
    assert calls == [1, 2]
    runs = [info for info in reporter.task_runs().values()]
    assert len(runs) == 3
    states = sorted(reporter.task_states(info.id) for info in runs)
    assert states == [
        ["Pending", "Cached"],
        ["Pending", "Running", "Completed"],
        ["Pending", "Running", "Completed"],
    ]
    cached = [info for info in runs if reporter.task_states(info.id) == ["Pending", "Cached"]]
    assert cached[0].cache_key is not None


def test_cache_expiration(results_dir: Path) -> None:
    store = LocalResultStore(results_dir)
    index = CacheIndex(store)
    ref = persist("value", store, PickleSerializer(), CacheIndex.result_key("k"))
    index.record("k", ref, timedelta(seconds=-1))
    assert index.lookup("k") is None
    index.record("k", ref, timedelta(hours=1))
    assert index.lookup("k") == ref
    index.record("k", ref, None)
    assert index.lookup("k") == ref
    store.delete(ref["key"])
    assert index.lookup("k") is None  # the result itself is gone


def test_cache_expiration_on_a_task() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, params: "constant", cache_expiration=timedelta(seconds=-1))
    def expired() -> int:
        calls.append(1)
        return 1

    @flow
    def pipeline() -> int:
        return expired()

    pipeline()
    pipeline()
    assert len(calls) == 2


def test_refresh_cache_runs_again() -> None:
    calls: list[int] = []

    def key(ctx: Any, params: dict[str, Any]) -> str:
        return "same"

    @task(cache_key_fn=key)
    def cached() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def pipeline() -> tuple[int, int]:
        return cached(), cached.with_options(refresh_cache=True)()

    assert pipeline() == (1, 2)


def test_task_input_hash_is_stable_and_argument_sensitive() -> None:
    assert hash_objects({"b": 1, "a": 2}) == hash_objects({"a": 2, "b": 1})
    assert hash_objects([1]) != hash_objects([2])
    assert hash_objects({1, 2}) == hash_objects({2, 1})
    assert hash_objects(lambda: 1) is None  # neither JSON nor picklable


CACHED_SCRIPT = textwrap.dedent(
    """
    import sys
    from baton import flow, task, task_input_hash

    @task(cache_key_fn=task_input_hash)
    def expensive(x: int) -> int:
        print("computing", x)
        return x * 3

    @flow
    def pipeline(x: int) -> int:
        return expensive(x)

    print("result", pipeline(int(sys.argv[1])))
    """
)


def test_the_cache_works_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "cached.py"
    script.write_text(CACHED_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_HOME"] = str(tmp_path / "home")

    def run(x: int) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, str(script), str(x)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        return done

    first = run(5)
    assert "computing 5" in first.stdout and "result 15" in first.stdout
    second = run(5)
    assert "computing" not in second.stdout and "result 15" in second.stdout
    assert "Finished in state Cached()" in second.stderr
    assert list((tmp_path / "home" / "results" / "cache").glob("*.json"))
