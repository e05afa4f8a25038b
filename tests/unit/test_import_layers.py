"""The SDK's modules depend one way, read from the source (`tests/support/import_graph.py`).

Bottom to top: foundations; states and transports; the engine; deployments; the worker; the
public API (`baton`, `Flow`, `Task`); the CLI. A module imports only from its own layer or
those below, with no cycle anywhere, counting the imports only a type checker follows
(`if TYPE_CHECKING:`) and those inside functions: a cycle held apart by a function-level import
is still a cycle in the design. Imports inside functions are allowed only where they are
deliberate, listed below with why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..support.import_graph import edges, function_level_imports, module_names, strongly_connected

SDK = Path(__file__).resolve().parents[2] / "sdk" / "baton"

# Each SDK module belongs to the first layer one of whose names it is or is inside of ("baton"
# itself is the package's `__init__` only).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundations",
        (
            "baton._exceptions",
            "baton._settings",
            "baton._retries",
            "baton._event_loop",
            "baton._loop_thread",
            "baton._validation",
            "baton._drivers",
            "baton._task_runners",
            "baton._results",
            "baton._fast_states",
            "baton._hooks",
            "baton._records",
            "baton._protocols",
            "baton._log_format",
            "baton._tracing",
        ),
    ),
    ("states and transports", ("baton.states", "baton._amqp", "baton._transport", "baton._dead_letters")),
    (
        "engine",
        (
            "baton._definitions",
            "baton._context",
            "baton._futures",
            "baton._final_state",
            "baton._inputs",
            "baton._logging",
            "baton._cache",
            "baton._reporting",
            "baton._runtime",
            "baton._task_engine",
            "baton._flow_engine",
            "baton._entrypoints",
            "baton._deployments",
            "baton._events",
            "baton._concurrency",
        ),
    ),
    ("deployments", ("baton._deploy",)),
    ("worker", ("baton._worker",)),
    (
        "public API",
        (
            "baton",
            "baton._flows",
            "baton._tasks",
            "baton.runtime",
            "baton.cache_policies",
            "baton.variables",
            "baton.artifacts",
            "baton._pauses",
        ),
    ),
    ("CLI", ("baton.cli",)),
)

# Imports inside functions, importer -> imported modules. Each group says why it is lazy.
LAZY_IMPORTS: dict[str, set[str]] = {
    # `import baton` and decorating a function load no pydantic, asyncio, httpx or aio-pika:
    # the engine loads on a flow's or task's first call, `deploy()` and `serve()` load their
    # own code when called, asyncio only when an async task runs.
    "baton._flows": {
        "baton._flow_engine",
        "baton._inputs",
        "baton._runtime",
        "baton._deploy.deployer",
        "baton._worker._serve",
    },
    "baton._tasks": {"baton._task_engine"},
    # tag concurrency limits (and so httpx) only for a task run with tags and a server to ask
    "baton._task_engine": {"baton._concurrency._tags"},
    "baton._futures": {"baton_schemas.states", "asyncio"},
    "baton._hooks": {"asyncio"},  # only for an async hook
    "baton._records": {"baton_schemas.runs"},
    "baton._validation": {"pydantic"},
    "baton._task_runners": {"baton._loop_thread"},
    # `task_input_hash` is imported where tasks are defined: settings load only if a result is
    # read back with no runtime configured.
    "baton._results": {"baton._settings"},
    # Chosen by configuration: uvloop if installed; the reporter's transport if a server is set
    # (a local run imports no network library).
    "baton._event_loop": {"uvloop"},
    # OpenTelemetry (the `otel` extra) only once traces are turned on
    "baton._tracing": {
        "opentelemetry",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.sdk.resources",
        "opentelemetry.sdk.trace",
        "opentelemetry.sdk.trace.export",
        "opentelemetry.trace",
        "opentelemetry.trace.propagation.tracecontext",
    },
    "baton._reporting": {"baton._reporting._remote", "baton._transport.amqp", "baton._transport.http"},
    # A run's process reaches the broker itself only when its worker does not relay heartbeats.
    "baton._worker._relay": {"baton._transport.amqp"},
    # The worker imports the fork server's launcher side; the flow-run code (the engine) loads
    # only in the fork server's own process.
    "baton._worker._forkserver": {"baton._worker._child"},
    # The CLI: each sub-command imports what it needs when it runs, so `baton --help` (and
    # every other command) loads no pydantic, httpx, aio-pika, engine, worker or server code.
    "baton.cli._api": {"httpx", "baton._settings", "baton._transport.http"},
    "baton.cli._config": {"baton._settings"},
    "baton.cli._dead_letters": {"baton._settings", "baton._dead_letters"},
    "baton.cli._spool": {
        "baton._reporting._spool",
        "baton._settings",
        "baton._transport",
        "baton._transport.amqp",
        "baton._transport.http",
    },
    "baton.cli._backfill": {"baton._deployments", "baton_schemas.backfill", "pydantic"},
    "baton.cli._deploy": {"baton._deploy.config", "baton._deploy.deployer"},
    "baton.cli._deployments": {"baton._deployments", "baton_schemas.deployments"},
    "baton.cli._schedules": {"baton._deployments"},
    "baton.cli._events": {"baton._events._client", "baton._settings"},
    "baton.cli._automations": {"baton._events._automations", "baton._settings", "yaml"},
    "baton.cli._flow_runs": {"baton_schemas.pauses", "baton_schemas.states", "orjson"},
    "baton.cli._server": {
        "asyncpg",
        "baton._amqp",
        "baton._transport._installation",
        "baton.cli._config",
        "baton_schemas.export",
        "baton_server.api.auth",
        "baton_server.db.audit",
        "baton_server.db.migrate",
        "baton_server.server",
        "baton_server.settings",
    },
    "baton.cli._variables": {"baton_schemas.variables"},
    "baton.cli._concurrency_limits": {"baton_schemas.concurrency"},
    "baton.cli._artifacts": {"rich.markdown"},
    "baton.cli._work_pools": {"baton_schemas.job_templates", "baton_schemas.pools", "pydantic"},
    "baton.cli._workers": {
        "asyncio",
        "baton._event_loop",
        "baton._worker._serve",
        "baton._worker._settings",
        "baton._worker._worker",
    },
}


def _layer(module: str) -> int:
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "baton" and module.startswith(f"{name}.")):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_every_module_has_a_layer() -> None:
    for module in module_names(SDK):
        _layer(module)


def test_no_import_cycle_among_sdk_modules() -> None:
    graph: dict[str, set[str]] = {}
    for edge in edges(SDK):
        graph.setdefault(edge.source, set()).add(edge.target)
    assert strongly_connected(sorted(module_names(SDK)), graph) == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{e.source} ({LAYERS[_layer(e.source)][0]}) -> {e.target} ({LAYERS[_layer(e.target)][0]}),"
        f" line {e.line}, {e.kind}"
        for e in edges(SDK)
        if _layer(e.target) > _layer(e.source)
    ]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_function_level_imports_are_the_deliberate_ones() -> None:
    found: dict[str, set[str]] = {}
    for item in function_level_imports(SDK):
        found.setdefault(item.source, set()).add(item.target)
    unexpected = {
        f"{source} -> {target}"
        for source, targets in found.items()
        for target in targets - LAZY_IMPORTS.get(source, set())
    }
    assert not unexpected, (
        f"import these at the top, or add them to LAZY_IMPORTS with why: {sorted(unexpected)}"
    )
    stale = {
        f"{source} -> {target}"
        for source, targets in LAZY_IMPORTS.items()
        for target in targets - found.get(source, set())
    }
    assert not stale, f"no longer imported inside a function: drop from LAZY_IMPORTS: {sorted(stale)}"


def test_baton_help_loads_no_engine_worker_or_server() -> None:
    probe = (
        "import json, sys\n"
        "sys.argv = ['baton', '--help']\n"
        "from baton.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Usage" in done.stdout
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    heavy = {"pydantic", "httpx", "aio_pika", "asyncpg", "fastapi", "uvicorn"}
    assert not loaded & heavy
    ours = {
        m
        for m in loaded
        if m.startswith(("baton_server", "baton_schemas", "baton._worker", "baton._deploy."))
        or m in {"baton._flow_engine", "baton._task_engine", "baton._runtime", "baton._reporting"}
    }
    assert ours <= {"baton._deploy._errors"}, sorted(ours)
