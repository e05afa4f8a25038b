"""`import baton` stays lean, and the public API is declared."""

from __future__ import annotations

import json
import subprocess
import sys

import baton

HEAVY = ["fastapi", "asyncpg", "uvicorn", "baton_server", "aio_pika", "httpx", "pydantic"]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_baton_imports_nothing_heavy() -> None:
    loaded = _modules_after("import baton")
    assert not loaded & set(HEAVY)


def test_decorating_imports_no_server_or_network_library() -> None:
    code = "from baton import flow, task\n@task\ndef t(): pass\n@flow\ndef f(): t()"
    loaded = _modules_after(code)
    assert not loaded & {"fastapi", "asyncpg", "uvicorn", "baton_server", "aio_pika", "httpx"}
    # asyncio and pydantic load with the engine, on a flow's first call (about 30 ms and 60 ms)
    assert not loaded & {"asyncio", "pydantic"}


def test_running_a_local_flow_imports_no_network_library() -> None:
    code = "from baton import flow\n@flow\ndef f(): return 1\nassert f() == 1"
    loaded = _modules_after(code)
    assert not loaded & {"fastapi", "asyncpg", "uvicorn", "baton_server", "aio_pika", "httpx"}


def test_public_api() -> None:
    expected = {
        "flow",
        "task",
        "get_run_logger",
        "unmapped",
        "wait",
        "as_completed",
        "State",
        "StateType",
        "states",
        "exponential_backoff",
        "task_input_hash",
        "ParameterValidationError",
    }
    assert expected <= set(baton.__all__)
    for name in baton.__all__:
        assert getattr(baton, name) is not None
    assert baton.states.Completed().is_completed()
    assert baton.State is baton.states.State
