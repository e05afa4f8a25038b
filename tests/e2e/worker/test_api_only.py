"""A worker needs only the API: `baton worker start` with BATON_API_URL and BATON_API_KEY (a key
of scope worker) and no BATON_BROKER_URL learns the broker from the API.

Started before the API, it waits for it (a line per try) instead of exiting. A worker too new or
too old for its server is refused at start in one line naming both versions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ...support.processes import BATON, free_port, server_process
from .conftest import Setup, WorkerProcess, wait_until

# a worker of another envelope schema: the same code, told it writes another one
OTHER_SCHEMA = (
    "import sys; import baton_schemas.compat as c; c.SCHEMA_VERSION = int(sys.argv.pop(1)); "
    "c.MIN_SCHEMA_VERSION = min(c.MIN_SCHEMA_VERSION, c.SCHEMA_VERSION); "
    "from baton.cli import main; main()"
)


def _worker_key(setup: Setup) -> str:
    created = setup.api.post("/api_keys", {"name": f"worker-{setup.suffix}", "scopes": ["worker"]})
    return str(created["secret"])


def _api_only_env(setup: Setup, api_url: str, key: str, **extra: str) -> dict[str, str]:
    env = setup.server.client_env(amqp=False, BATON_API_URL=api_url, BATON_API_KEY=key, **extra)
    assert "BATON_BROKER_URL" not in env and "BATON_DATABASE_URL" not in env
    return env


def _start(setup: Setup, env: dict[str, str], name: str) -> WorkerProcess:
    log_path = setup.folder / f"worker-{name}.log"
    argv = [BATON, "worker", "start", "--pool", setup.pool, "--name", name]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=setup.folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = WorkerProcess(process, log_path, name)
    setup.workers.append(worker)
    return worker


def test_a_worker_with_only_the_api_and_a_worker_key_runs_a_flow(setup: Setup) -> None:
    env = _api_only_env(setup, setup.server.api_url, _worker_key(setup))
    worker = _start(setup, env, f"api-only-{setup.suffix}")
    worker.wait_log("serving pool")
    deployment = setup.deployment("flows.py:hello")
    run = setup.api.run(deployment, parameters={"name": "api only"})
    assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
    assert f"Claimed flow run {run['name']!r}" in worker.log()


def test_a_worker_started_before_the_api_waits_for_it(setup: Setup, tmp_path: Path) -> None:
    # a second server (a replica: same database and vhost), not up yet
    port = free_port()
    env = _api_only_env(
        setup, f"http://127.0.0.1:{port}/api", _worker_key(setup), BATON_WORKER_API_WAIT_MAX_SECONDS="1"
    )
    worker = _start(setup, env, f"early-{setup.suffix}")
    waiting = f"Waiting for the API at http://127.0.0.1:{port}/api"
    # a line each try, the pause between tries growing to the cap (1 s here) and no further
    wait_until(lambda: worker.log().count(waiting) >= 6, timeout=30, what="six tries at the API")
    pauses = [float(p) for p in re.findall(r"trying again in ([0-9.]+)s", worker.log())]
    assert len(pauses) >= 6 and all(p <= 1.0 for p in pauses), pauses
    assert worker.alive()
    with server_process(setup.server.backends, tmp_path, port=port):
        worker.wait_log("serving pool")
        deployment = setup.deployment("flows.py:hello")
        run = setup.api.run(deployment)
        assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
        assert f"Claimed flow run {run['name']!r}" in worker.log()


def _refused(setup: Setup, schema: int) -> subprocess.CompletedProcess[str]:
    env = _api_only_env(setup, setup.server.api_url, _worker_key(setup))
    argv = [sys.executable, "-c", OTHER_SCHEMA, str(schema), "worker", "start", "--pool", setup.pool]
    return subprocess.run(argv, cwd=setup.folder, env=env, capture_output=True, text=True, timeout=60)


def test_a_worker_too_new_or_too_old_for_its_server_is_refused_naming_both_versions(setup: Setup) -> None:
    for schema, age in ((2, "too new"), (0, "too old")):
        refused = _refused(setup, schema)
        assert refused.returncode == 1, refused.stderr
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, refused.stderr
        assert f"this worker (baton 0.1.0, message schema {schema}" in errors[0]
        assert f"is {age} for the server (baton 0.1.0, message schema 1" in errors[0]
        assert "Traceback" not in refused.stderr
