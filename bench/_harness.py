"""Shared by the benchmarks: a private database and vhost, and a real `baton server start`."""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.backends import Backends, test_backends  # noqa: E402
from tests.support.processes import ServerProcess, server_process  # noqa: E402

__all__ = ["ROOT", "RunningServer", "describe", "percentile", "server", "server_process", "test_backends"]


@dataclass
class RunningServer:
    backends: Backends
    server: ServerProcess
    log_dir: Path

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def rss_mb(self) -> float:
        return self.server.rss_mb()


@contextlib.contextmanager
def server(*services: str, **env: str) -> Iterator[RunningServer]:
    """`baton server start` (every service, or `services`) on a database and vhost of its own."""
    with test_backends() as backends, tempfile.TemporaryDirectory() as logs:
        environment: dict[str, Any] = {"BATON_LOG_LEVEL": "WARNING", **env}
        with server_process(backends, Path(logs), *services, **environment) as process:
            yield RunningServer(backends, process, Path(logs))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{name}: p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms (n={len(ms)})"
