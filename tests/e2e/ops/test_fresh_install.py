"""`pip install baton` on its own: the wheel, in a fresh venv without the server extra, runs a
flow against a server and runs deployments as a worker; server commands say what to install.

The server is the suite's own (`baton server start` from the repo's venv); everything else
(the flow process, the CLI, the worker and the flow-run processes it starts) is the fresh venv's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ...support.processes import ROOT
from ..conftest import LiveServer
from ..worker.conftest import wait_until

SERVER_EXTRA = ("fastapi", "uvicorn", "asyncpg", "jsonschema")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]

FLOW = """
import sys

from baton import flow, task


@task
def shout(name: str) -> str:
    return name.upper()


@flow
def greet(name: str) -> str:
    return f"hello {shout(name)}"


if __name__ == "__main__":
    print(greet(sys.argv[1]))
"""


@dataclass
class FreshVenv:
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def baton(self) -> str:
        return str(self.path / "bin" / "baton")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """The wheel and its dependencies (not the server extra) in a venv of their own."""
    base = tmp_path_factory.mktemp("fresh-install")
    wheels = base / "wheels"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("baton-*.whl")
    # a wheelhouse of exactly what `pip install baton` resolves to, then an install from it alone
    subprocess.run([*PIP, "wheel", "-w", str(wheels), str(wheel)], check=True, capture_output=True)
    venv = FreshVenv(base / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.path)], check=True)
    subprocess.run(
        [*PIP, "--python", venv.python, "install", "--no-index", "--find-links", str(wheels), "baton"],
        check=True,
        capture_output=True,
    )
    return venv


def _env(server: LiveServer, *, amqp: bool = False, **extra: str) -> dict[str, str]:
    env = server.client_env(amqp=amqp, **extra)
    env.pop("VIRTUAL_ENV", None)
    return env


def test_the_plain_install_has_no_server_packages(fresh: FreshVenv) -> None:
    probe = (
        "import importlib.util, json; "
        f"print(json.dumps([importlib.util.find_spec(n) is not None for n in {SERVER_EXTRA!r}]))"
    )
    done = subprocess.run([fresh.python, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [False] * len(SERVER_EXTRA)


@pytest.mark.parametrize(
    "command",
    [
        ["server", "start"],
        ["server", "db", "upgrade"],
        ["api-key", "create", "--name", "x", "--scope", "read"],
    ],
)
def test_server_commands_say_to_install_the_server_extra(fresh: FreshVenv, command: list[str]) -> None:
    done = subprocess.run([fresh.baton, *command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "baton: this command runs server code: pip install 'baton[server]' "
        "(missing: fastapi, uvicorn, asyncpg, jsonschema)"
    ]


def test_a_flow_of_the_plain_install_reports_to_the_server(
    fresh: FreshVenv, live_server: LiveServer, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    done = subprocess.run(
        [fresh.python, "flows.py", "Arthur"],
        cwd=tmp_path,
        env=_env(live_server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "hello ARTHUR"
    listed = subprocess.run(
        [fresh.baton, "flow-run", "ls", "--limit", "50"],
        env=_env(live_server, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "greet" in listed.stdout


@pytest.fixture
def worker_of_fresh_install(fresh: FreshVenv, live_server: LiveServer, tmp_path: Path) -> Iterator[str]:
    """A work pool with a deployment, served by `baton worker start` of the fresh venv."""
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    pool = f"fresh-{uuid.uuid4().hex[:8]}"
    created = subprocess.run(
        [fresh.baton, "work-pool", "create", pool, "--type", "process"],
        env=_env(live_server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    body = {"name": pool, "flow_name": "greet", "entrypoint": "flows.py:greet", "work_pool_name": pool}
    response = httpx.post(f"{live_server.api_url}/deployments", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [fresh.baton, "worker", "start", "--pool", pool, "--name", pool],
            cwd=tmp_path,
            env=_env(live_server, amqp=True),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: worker.poll() is not None or "serving pool" in log_path.read_text(),
            what="the fresh install's worker to serve its pool",
        )
        assert worker.poll() is None, log_path.read_text()
        yield pool
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_worker_of_the_plain_install_runs_a_deployment(
    fresh: FreshVenv, live_server: LiveServer, worker_of_fresh_install: str
) -> None:
    pool = worker_of_fresh_install
    done = subprocess.run(
        [fresh.baton, "deployment", "run", f"greet/{pool}", "--param", "name=Ford", "--watch"],
        env=_env(live_server, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Completed" in done.stdout
