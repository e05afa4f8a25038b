"""Shared by the benchmarks: a private database and vhost, and a real `baton server start`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.backends import Backends, test_backends  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    backends: Backends
    api_url: str
    process: subprocess.Popen[bytes]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def server(**env: str) -> Iterator[RunningServer]:
    with test_backends() as backends:
        port = free_port()
        environ = {
            **os.environ,
            "BATON_DATABASE_URL": backends.database_url,
            "BATON_BROKER_URL": backends.broker_url,
            "BATON_API_PORT": str(port),
            "BATON_LOG_LEVEL": "WARNING",
            **env,
        }
        log_path = Path(f"/tmp/baton-bench-server-{port}.log")
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/baton"), "server", "start"], env=environ, stderr=log_file
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.1)
            yield RunningServer(backends, f"http://127.0.0.1:{port}/api", process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            log_file.close()
            print(f"(server log: {log_path})")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name}: p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms "
        f"(n={len(ms)})"
    )
