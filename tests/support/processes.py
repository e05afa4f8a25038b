"""Real Baton processes for end-to-end tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .backends import Backends

ROOT = Path(__file__).resolve().parents[2]
BATON = str(ROOT / ".venv" / "bin" / "baton")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def baton_env(backends: Backends, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update(
        BATON_DATABASE_URL=backends.database_url,
        BATON_BROKER_URL=backends.broker_url,
        BATON_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mb(self, field: str = "VmRSS") -> float:
        """The process's resident memory now, or its peak with `field="VmHWM"`."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def server_process(
    backends: Backends,
    log_dir: Path,
    *services: str,
    ready_timeout: float = 30,
    port: int | None = None,
    env: dict[str, str] | None = None,
    baton: str = BATON,
    **more_env: str,
) -> Iterator[ServerProcess]:
    """`baton server start` with its own port (or `port`, e.g. to restart a server where its
    clients expect it); waits until /ready answers (or the log says so). `baton` is the
    executable, the repo's unless a test installed one elsewhere."""
    env = {**(env or {}), **more_env}
    port = port or free_port()
    environ = baton_env(backends, BATON_API_PORT=str(port), **env)
    log_path = log_dir / f"server-{port}.log"
    args = [baton, "server", "start"]
    for name in services:
        args += ["--service", name]
    with log_path.open("ab") as log_file:  # a restart where clients expect it appends
        process = subprocess.Popen(args, env=environ, stdout=log_file, stderr=subprocess.STDOUT)
        server = ServerProcess(process, port, log_path, environ)
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"baton server exited {process.returncode}:\n{server.log()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"baton server not ready:\n{server.log()}")
                if services and "api" not in services:
                    if "baton server running" in server.log():
                        break
                else:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                            break
                time.sleep(0.1)
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.stop()
            if process.poll() is None:
                process.kill()
