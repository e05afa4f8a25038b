"""`make stop` (scripts/stop.sh; issue 13, point 9): the worker first, waited for while it
drains, then the server, waited for too; it prints how each process ended."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from ...support.backends import Backends, separate_backends
from ...support.processes import BATON, ROOT, baton_env, free_port


def _wait(what: str, probe: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
    except httpx.HTTPError:
        return False


def test_make_stop_stops_the_worker_then_the_server_and_says_how(backends: Backends, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with separate_backends(backends, "stop") as own:
        env = baton_env(own, BATON_HOME=str(home))
        subprocess.run(
            [BATON, "server", "db", "upgrade", "--create"], env=env, check=True, capture_output=True
        )
        key = subprocess.run(
            [BATON, "api-key", "create", "--name", "stop", "--scope", "admin"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        with (home / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [BATON, "server", "start"], env={**env, "BATON_API_PORT": str(port)}, stdout=log, stderr=log
            )
        (home / "server.pid").write_text(str(server.pid))
        try:
            _wait("the server", lambda: _ready(port))
            worker_env = {**env, "BATON_API_URL": f"http://127.0.0.1:{port}/api", "BATON_API_KEY": key}
            worker_env.pop("BATON_DATABASE_URL")
            with (home / "worker.log").open("wb") as log:
                worker = subprocess.Popen(
                    [BATON, "worker", "start", "--pool", "stop"], env=worker_env, stdout=log, stderr=log
                )
            (home / "worker.pid").write_text(str(worker.pid))
            _wait("the worker", lambda: "serving pool" in (home / "worker.log").read_text())

            done = subprocess.run(
                ["bash", str(ROOT / "scripts" / "stop.sh")],
                env={**os.environ, "BATON_HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            for process in (locals().get("worker"), server):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(10)
        lines = done.stdout.splitlines()
        assert done.returncode == 0, done.stderr
        assert lines[0].startswith("worker: stopping pid")
        assert lines[1] == "worker: exited after SIGTERM", (home / "worker.log").read_text()[-3000:]
        assert lines[2].startswith("server: stopping pid")
        assert lines[3] == "server: exited after SIGTERM"
        assert worker.returncode is not None and server.returncode is not None
        assert not (home / "worker.pid").exists() and not (home / "server.pid").exists()
        server_log = (home / "server.log").read_text()
        assert server_log.index("api stopped") < server_log.index("tracker stopped")
