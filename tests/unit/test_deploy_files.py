"""deploy/compose.yaml runs every service Baton has, and agrees with the RabbitMQ definitions.

(deploy/rabbitmq/definitions.json itself is exercised user by user against a real node in
tests/e2e/ops/test_rabbitmq_users.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from baton_server.server import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


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


def test_compose_mounts_files_that_exist_and_loads_the_definitions() -> None:
    rabbitmq = _compose()["services"]["rabbitmq"]
    mounts = {}
    for volume in rabbitmq["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            assert (DEPLOY / source).is_file(), f"compose mounts {source}, which does not exist"
            mounts[target] = DEPLOY / source
    configs = [path for target, path in mounts.items() if target.startswith("/etc/rabbitmq/conf.d/")]
    (config,) = configs
    settings = {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in config.read_text().splitlines())
        if key.strip() and not key.startswith("#")
    }
    assert mounts[settings["load_definitions"]].name == "definitions.json"


def test_the_servers_broker_url_names_a_user_and_vhost_of_the_definitions() -> None:
    environment = _compose()["x-baton"]["environment"]
    url = urlsplit(environment["BATON_BROKER_URL"].replace("${BATON_SERVER_AMQP_PASSWORD:-change-me}", "pw"))
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
