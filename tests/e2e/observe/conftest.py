"""A Baton of its own (database and vhost) watched from outside: its server and a worker log in
JSON, serve their Prometheus metrics and export traces to an OTLP receiver run by the test.

One stack for the package (a server, a worker, runs through both), so each test reads what real
work left behind rather than starting processes of its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ...support.backends import Backends, separate_backends
from ...support.otlp import OtlpReceiver
from ...support.processes import BATON, ServerProcess, baton_env, free_port, server_process

T = TypeVar("T")

FLOWS = """
from baton import flow, task


@task
def double(x: int) -> int:
    return 2 * x


@flow
def doubled(n: int = 2) -> int:
    return sum(double(i) for i in range(n))


@flow
def fails() -> None:
    raise ValueError("this flow fails on purpose")
"""


def wait_until(probe: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, parsed by prometheus-client's own text parser."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@dataclass
class Stack:
    server: ServerProcess
    worker: subprocess.Popen[bytes]
    worker_log: Path
    worker_metrics: str
    http: httpx.Client
    pool: str
    folder: Path
    otlp: OtlpReceiver
    api_key: str

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/metrics"

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code < 300, f"POST {path}: {response.status_code} {response.text}"
        return response.json()  # type: ignore[no-any-return]

    def deployment(self, entrypoint: str) -> dict[str, Any]:
        body = {
            "name": f"d-{uuid.uuid4().hex[:6]}",
            "flow_name": entrypoint.rsplit(":", 1)[-1],
            "entrypoint": entrypoint,
            "work_pool_name": self.pool,
        }
        return self.post("/deployments", body)

    def run(self, deployment: dict[str, Any], **body: Any) -> dict[str, Any]:
        return self.post(f"/deployments/{deployment['id']}/runs", body)

    def wait_final(self, run_id: str) -> str:
        def final() -> str | None:
            state = self.http.get(f"/flow_runs/{run_id}").json()["state"]["type"]
            return state if state in {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"} else None

        return wait_until(final, what=f"run {run_id} to end")


@pytest.fixture(scope="package")
def stack(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("observe")
    (folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    observed = {"BATON_LOG_FORMAT": "json"}
    with separate_backends(backends, "observe") as own, OtlpReceiver() as otlp:
        traced = {**observed, "BATON_OTEL_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        key = subprocess.run(
            [BATON, "api-key", "create", "--name", "observe", "--scope", "admin"],
            env=baton_env(own),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with server_process(own, folder, env=traced) as server:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.api_url, headers=headers, timeout=30) as http:
                pool = "observed"
                response = http.post("/work_pools", json={"name": pool})
                assert response.status_code < 300, response.text
                port = free_port()
                env = baton_env(own, BATON_API_URL=server.api_url, BATON_API_KEY=key, **traced)
                worker_log = folder / "worker.log"
                argv = [BATON, "worker", "start", "--pool", pool, "--limit", "4", "--metrics-port", str(port)]
                with worker_log.open("wb") as log:
                    worker = subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_until(
                        lambda: "serving pool" in worker_log.read_text(errors="replace"),
                        what="the worker to start",
                    )
                    yield Stack(
                        server,
                        worker,
                        worker_log,
                        f"http://127.0.0.1:{port}/metrics",
                        http,
                        pool,
                        folder,
                        otlp,
                        key,
                    )
                finally:
                    if worker.poll() is None:
                        worker.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        worker.wait(30)
                    if worker.poll() is None:
                        worker.kill()
