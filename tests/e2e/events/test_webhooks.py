"""A webhook called as a sender would: a good signature, a bad one, a token, a template error."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from baton_server.events.signatures import github_signature, stripe_signature

from ...support.processes import BATON
from ..conftest import LiveServer
from ..sdk.conftest import run_process
from .conftest import stored, until


async def _create(live_server: LiveServer, tmp_path: Path, name: str, template: str, *options: str) -> str:
    path = tmp_path / f"{name}.j2"
    path.write_text(template)
    env = live_server.client_env(HOOK_SECRET="shh-a-long-secret", HOOK_TOKEN="token-12345678")
    created = await run_process([BATON, "webhook", "create", name, "-t", str(path), *options], env, tmp_path)
    return created.check().stdout.split("POST ", 1)[1].split()[0]


async def test_signatures_tokens_and_template_errors(
    live_server: LiveServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    ok = '{"event": "hook' + tag + '.{{ body.action }}", "resource": {"baton.resource.id": "{{ body.id }}"}}'
    github = await _create(live_server, tmp_path, f"gh-{tag}", ok, "--hmac-secret-env", "HOOK_SECRET")
    stripe = await _create(
        live_server,
        tmp_path,
        f"st-{tag}",
        ok,
        "--hmac-secret-env",
        "HOOK_SECRET",
        "--signature-style",
        "stripe",
    )
    token = await _create(live_server, tmp_path, f"tk-{tag}", ok, "--token-env", "HOOK_TOKEN")
    broken = await _create(live_server, tmp_path, f"br-{tag}", '{"event": "{{ body.missing.deeper }}"}')
    escape = await _create(live_server, tmp_path, f"es-{tag}", "{{ ''.__class__.__mro__ }}")
    body = orjson.dumps({"action": "opened", "id": "pr.1"})
    json = {"content-type": "application/json"}
    async with httpx.AsyncClient() as sender:
        good = await sender.post(
            github,
            content=body,
            headers={**json, "X-Hub-Signature-256": github_signature("shh-a-long-secret", body)},
        )
        assert good.status_code == 202, good.text
        bad = await sender.post(
            github,
            content=body,
            headers={**json, "X-Hub-Signature-256": github_signature("wrong-secret", body)},
        )
        assert bad.status_code == 401 and "signature" in bad.json()["detail"]
        unsigned = await sender.post(github, content=body, headers=json)
        assert unsigned.status_code == 401
        stripe_ok = await sender.post(
            stripe,
            content=body,
            headers={
                **json,
                "Stripe-Signature": stripe_signature("shh-a-long-secret", body, int(time.time())),
            },
        )
        assert stripe_ok.status_code == 202, stripe_ok.text
        replayed = stripe_signature("shh-a-long-secret", body, int(time.time()) - 3600)
        assert (
            await sender.post(stripe, content=body, headers={**json, "Stripe-Signature": replayed})
        ).status_code == 401
        assert (
            await sender.post(token, content=body, headers={**json, "X-Baton-Token": "token-12345678"})
        ).status_code == 202
        assert (
            await sender.post(token, content=body, headers={**json, "X-Baton-Token": "nope-12345678"})
        ).status_code == 401
        failed = await sender.post(broken, content=body, headers=json)
        assert failed.status_code == 400 and "template failed" in failed.json()["detail"]
        blocked = await sender.post(escape, content=body, headers=json)
        assert blocked.status_code == 400 and "unsafe" in blocked.json()["detail"]
        assert (
            await sender.post(github.rsplit("/", 1)[0] + "/no-such-hook", content=body)
        ).status_code == 404

    async def three() -> list[dict[str, Any]] | None:
        items = await stored(http, name=f"hook{tag}.*")
        return items if len(items) >= 3 else None

    items = await until(three, what="the three accepted calls stored")
    assert len(items) == 3  # nothing from the refused ones
    listed = await run_process([BATON, "webhook", "ls"], live_server.client_env(), tmp_path)
    assert f"gh-{tag}" in listed.check().stdout
    shown = await run_process(
        [BATON, "webhook", "inspect", f"st-{tag}", "--json"], live_server.client_env(), tmp_path
    )
    shown_body = orjson.loads(shown.check().stdout)
    assert shown_body["signature_style"] == "stripe" and "shh" not in shown.stdout  # never the secret


async def test_the_event_cli(live_server: LiveServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    env = live_server.client_env()
    emitted = await run_process(
        [
            BATON,
            "event",
            "emit",
            f"cli{tag}.created",
            "-r",
            "baton.resource.id=shop.order.42",
            "-p",
            '{"total": 18.5}',
        ],
        env,
        tmp_path,
    )
    assert "Emitted" in emitted.check().stdout
    refused = await run_process([BATON, "event", "emit", f"cli{tag}.created", "-r", "x=y"], env, tmp_path)
    assert refused.returncode == 1 and "baton.resource.id" in refused.stderr

    async def listed() -> list[dict[str, Any]] | None:
        out = await run_process(
            [BATON, "event", "ls", "--name", f"cli{tag}.*", "--since", "1h", "--json"], env, tmp_path
        )
        lines = [orjson.loads(line) for line in out.check().stdout.splitlines() if line]
        return lines or None

    [event] = await until(listed, what="the emitted event listed")
    assert event["payload"] == {"total": 18.5}
