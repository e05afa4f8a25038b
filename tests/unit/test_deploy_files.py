"""deploy/compose.yaml runs every service Baton has, and agrees with the RabbitMQ definitions.

(deploy/rabbitmq/definitions.json itself is exercised user by user against a real node in
tests/e2e/ops/test_rabbitmq_users.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from baton_server.server import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose(**environment: str) -> dict[str, Any]:
    """compose.yaml with its `${NAME:-default}`s resolved as compose would, in `environment`."""
    text = (DEPLOY / "compose.yaml").read_text()
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: environment.get(m[1], m[2]), text)
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def _definitions() -> dict[str, Any]:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())  # type: ignore[no-any-return]


def _service_commands() -> dict[str, list[str]]:
    return {name: spec.get("command", []) for name, spec in _compose()["services"].items()}


def test_compose_runs_every_server_service_alone() -> None:
    started = {}
    for name, command in _service_commands().items():
        if command[:2] == ["server", "start"]:
            picked = [command[i + 1] for i, arg in enumerate(command) if arg == "--service"]
            assert len(picked) == 1, f"compose service {name} runs {picked or 'every service'}: run one"
            started[picked[0]] = name
    assert set(started) == set(SERVICES), f"compose runs {sorted(started)}; Baton has {SERVICES}"


def test_compose_publishes_the_backends_ports_on_loopback() -> None:
    services = _compose()["services"]
    assert "127.0.0.1:5432:5432" in services["postgres"]["ports"]
    assert "127.0.0.1:5672:5672" in services["rabbitmq"]["ports"]


def _rabbitmq_mounts(**environment: str) -> dict[str, Path]:
    mounts = {}
    for volume in _compose(**environment)["services"]["rabbitmq"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            assert (DEPLOY / source).is_file(), f"compose mounts {source}, which does not exist"
            mounts[target] = DEPLOY / source
    return mounts


def _rabbitmq_settings(mounts: dict[str, Path]) -> dict[str, str]:
    (config,) = [path for target, path in mounts.items() if target.startswith("/etc/rabbitmq/conf.d/")]
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in config.read_text().splitlines())
        if key.strip() and not key.startswith("#")
    }


def test_compose_mounts_files_that_exist_and_loads_the_definitions() -> None:
    mounts = _rabbitmq_mounts()
    assert mounts[_rabbitmq_settings(mounts)["load_definitions"]].name == "definitions.json"


def test_the_development_pair_keeps_guest_and_trusts_postgres() -> None:
    """What scripts/services.sh sets to start the backends for `make dev` / `make test`."""
    environment = {
        "POSTGRES_USER": "postgres",
        "POSTGRES_HOST_AUTH_METHOD": "trust",
        "BATON_RABBITMQ_CONF": "./rabbitmq/dev.conf",
    }
    settings = _rabbitmq_settings(_rabbitmq_mounts(**environment))
    assert "load_definitions" not in settings  # a node that loads definitions creates no guest
    assert settings["loopback_users"] == "none"  # guest comes in through the published port
    postgres = _compose(**environment)["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_HOST_AUTH_METHOD"]) == ("postgres", "trust")
    script = (DEPLOY.parent / "scripts" / "services.sh").read_text()
    assert all(f"{name}={value}" in script for name, value in environment.items())


def test_the_servers_broker_url_names_a_user_and_vhost_of_the_definitions() -> None:
    environment = _compose()["x-baton"]["environment"]
    url = urlsplit(environment["BATON_BROKER_URL"])
    definitions = _definitions()
    assert url.username in {user["name"] for user in definitions["users"]}
    assert url.path.lstrip("/") in {vhost["name"] for vhost in definitions["vhosts"]}
    granted = {(p["user"], p["vhost"]) for p in definitions["permissions"]}
    assert (url.username, url.path.lstrip("/")) in granted


def test_every_user_of_the_definitions_has_permissions_on_the_vhost() -> None:
    definitions = _definitions()
    (vhost,) = [v["name"] for v in definitions["vhosts"]]
    granted = {p["user"] for p in definitions["permissions"] if p["vhost"] == vhost}
    assert granted == {user["name"] for user in definitions["users"]}
