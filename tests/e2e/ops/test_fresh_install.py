"""`pip install baton` on its own: the wheel, in a fresh venv without the server extra, runs a
flow against a server and runs deployments as a worker; server commands say what to install.
`pip install 'baton[server]'`, in another fresh venv, adds the services: its `baton server start`
serves and stops cleanly.

The plain install's tests use the suite's server (`baton server start` from the repo's venv);
everything else (the flow process, the CLI, the worker and the flow-run processes it starts) is
the fresh venv's.
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

from baton_server.server import SERVICES

from ...support.backends import Backends, separate_backends
from ...support.processes import ROOT, server_process
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
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and every wheel `pip install 'baton[server]'` resolves to, built once for both
    venvs; they install from it alone, so each gets only what the wheel's metadata asks for."""
    wheels = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("baton-*.whl")
    subprocess.run([*PIP, "wheel", "-w", str(wheels), f"{wheel}[server]"], check=True, capture_output=True)
    return wheels


def _install(path: Path, wheelhouse: Path, requirement: str) -> FreshVenv:
    venv = FreshVenv(path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.path)], check=True)
    pip = [*PIP, "--python", venv.python]
    install = [*pip, "install", "--no-index", "--find-links", str(wheelhouse), requirement]
    subprocess.run(install, check=True, capture_output=True)
    return venv


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> FreshVenv:
    """The wheel and its dependencies (not the server extra) in a venv of their own."""
    return _install(tmp_path_factory.mktemp("fresh-install") / "venv", wheelhouse, "baton")


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> FreshVenv:
    """The wheel with the server extra in a venv of its own."""
    return _install(tmp_path_factory.mktemp("fresh-server") / "venv", wheelhouse, "baton[server]")


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


def test_the_server_extra_installs_the_services_into_the_venv(
    fresh_server: FreshVenv, tmp_path: Path
) -> None:
    """Imported from the venv's site-packages, not from a checkout: the wheel carries the
    services, and the extra's requirements are the ones they import."""
    names = ("baton", "baton_server", *SERVER_EXTRA)
    probe = (
        f"import importlib, json; print(json.dumps([importlib.import_module(n).__file__ for n in {names!r}]))"
    )
    # run where no checkout is on the path: the repo's source must not be what answers
    done = subprocess.run([fresh_server.python, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (site_packages,) = fresh_server.path.glob("lib/python*/site-packages")
    outside = [f for f in json.loads(done.stdout) if not Path(f).is_relative_to(site_packages)]
    assert outside == []


def test_the_server_extra_serves_and_stops_cleanly(
    fresh_server: FreshVenv, backends: Backends, tmp_path: Path
) -> None:
    """A database and vhost of its own: the fresh server migrates the database itself, and is the
    only Baton on them."""
    with (
        separate_backends(backends, "extra") as own,
        server_process(own, tmp_path, baton=fresh_server.baton) as server,
    ):
        # server_process returned once /ready answered 200; the process is the fresh venv's
        interpreter = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")[0]
        assert interpreter.decode() == fresh_server.python
        assert httpx.get(f"http://127.0.0.1:{server.port}/ready", timeout=10).status_code == 200
        code = server.stop()
    log = server.log()
    assert code == 0, log
    lines = log.splitlines()
    assert [line for line in lines if "| WARNING " in line or "| ERROR " in line] == [], log
    said = [line.partition("baton.server - ")[2] for line in lines if "baton.server - " in line]
    assert {f"{name} stopped" for name in SERVICES} <= set(said), log
    assert said[-1] == "stopped", log
