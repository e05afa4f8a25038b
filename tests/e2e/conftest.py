"""A real `baton server start` for end-to-end tests, with an admin key and the client env."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ..support.backends import Backends
from ..support.processes import BATON, ServerProcess, baton_env, server_process


@dataclass
class LiveServer:
    process: ServerProcess
    backends: Backends
    api_key: str

    @property
    def api_url(self) -> str:
        return self.process.api_url

    def client_env(self, *, amqp: bool = False, **extra: str) -> dict[str, str]:
        """The environment of a flow, CLI or worker process talking to this server.

        With amqp=True runs report over AMQP (as inside workers); otherwise over HTTP.
        """
        env = baton_env(self.backends, BATON_API_URL=self.api_url, BATON_API_KEY=self.api_key)
        if not amqp:
            env.pop("BATON_BROKER_URL")
        env.pop("BATON_DATABASE_URL")
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def live_server(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server process for the e2e tests that do not stop or restart it."""
    key = subprocess.run(
        [BATON, "api-key", "create", "--name", "e2e-admin", "--scope", "admin"],
        env=baton_env(backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with server_process(backends, tmp_path_factory.mktemp("live-server")) as process:
        yield LiveServer(process, backends, key)
