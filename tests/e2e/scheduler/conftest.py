"""A Baton of its own for each scheduler test (database and vhost): its API and tracker in one
process, and scheduler processes the test starts, kills and restarts."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ...support.backends import Backends, separate_backends
from ...support.processes import BATON, ServerProcess, baton_env, server_process


@dataclass
class Stack:
    backends: Backends
    api_server: ServerProcess
    key: str
    log_dir: Path

    @property
    def api_url(self) -> str:
        return self.api_server.api_url

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url.removesuffix("/api"),
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )

    @contextlib.contextmanager
    def scheduler(self, **env: str) -> Iterator[ServerProcess]:
        with server_process(self.backends, self.log_dir, "scheduler", **env) as process:  # type: ignore[arg-type]
            yield process

    async def db(self) -> asyncpg.Connection[Any]:
        return await asyncpg.connect(self.backends.database_url)

    def pool(self) -> str:
        name = f"pool-{uuid.uuid4().hex[:8]}"
        with self.client() as client:
            response = client.post("/api/work_pools", json={"name": name, "type": "process"})
        assert response.status_code == 201, response.text
        return name

    def deploy(self, pool: str, schedules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        body = {
            "name": fields.pop("name", "every-few-seconds"),
            "flow_name": fields.pop("flow_name", f"flow-{uuid.uuid4().hex[:8]}"),
            "entrypoint": fields.pop("entrypoint", "flows.py:f"),
            "work_pool_name": pool,
            "schedules": schedules,
            **fields,
        }
        with self.client() as client:
            response = client.post("/api/deployments", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def stack(backends: Backends, tmp_path: Path) -> Iterator[Stack]:
    with separate_backends(backends, "sched") as own:
        env = baton_env(own)
        subprocess.run([BATON, "server", "db", "upgrade"], env=env, check=True, capture_output=True)
        key = subprocess.run(
            [BATON, "api-key", "create", "--name", "sched-tests", "--scope", "admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with server_process(own, tmp_path, "api", "tracker") as api:
            yield Stack(own, api, key, tmp_path)
