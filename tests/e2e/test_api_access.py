"""Keys, scopes, the audit log and request limits against a real `baton server start`, driven
through the CLI and raw HTTP as an operator and a client would."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from ..support.processes import BATON, baton_env, server_process
from ..support.waiting import eventually
from .conftest import LiveServer


def _baton(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BATON, *args], env=env, capture_output=True, text=True, timeout=60)


def _raw_request(port: int, request: bytes) -> bytes:
    """One HTTP/1.1 exchange over a plain socket: what the client sends is exactly `request`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return status, body


async def test_the_key_is_checked_before_the_body(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.api_url) as http:
        garbage = {"content-type": "application/json"}
        anonymous = await http.post("/flow_runs", content=b"{not json", headers=garbage)
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"] == "an API key is required: send 'Authorization: Bearer <key>'"
        wrong = {**garbage, "Authorization": "Bearer baton_00000000_nope"}
        assert (await http.post("/flow_runs", content=b"{not json", headers=wrong)).status_code == 401
        valid = {**garbage, "Authorization": f"Bearer {live_server.api_key}"}
        assert (await http.post("/flow_runs", content=b"{not json", headers=valid)).status_code == 422


async def test_a_chunked_body_over_the_limit_gets_the_same_413(live_server: LiveServer) -> None:
    port = live_server.process.port
    limit = 8 * 1024 * 1024
    head = f"POST /api/flow_runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live_server.api_key}\r\n"
    head += "Content-Type: application/json\r\nConnection: close\r\n"
    announced = (head + f"Content-Length: {limit + 1}\r\n\r\n").encode()
    chunk = b"x" * (1024 * 1024)
    chunked = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(9)) + b"0\r\n\r\n"
    by_length = await asyncio.to_thread(
        _status_and_body, await asyncio.to_thread(_raw_request, port, announced)
    )
    by_chunks = await asyncio.to_thread(
        _status_and_body, await asyncio.to_thread(_raw_request, port, chunked)
    )
    assert by_length == by_chunks == (413, b'{"detail":"request body is larger than %d bytes"}' % limit)


async def test_scoped_keys_audit_and_revocation_from_the_cli(live_server: LiveServer, tmp_path: Path) -> None:
    server_env = baton_env(live_server.backends)
    name = f"runner-{uuid.uuid4().hex[:6]}"
    made = _baton(server_env, "api-key", "create", "--name", name, "--scope", "run", "--scope", "read")
    assert made.returncode == 0, made.stderr
    runner = made.stdout.strip()
    async with httpx.AsyncClient(
        base_url=live_server.api_url, headers={"Authorization": f"Bearer {runner}"}
    ) as http:
        assert (await http.get("/flow_runs")).status_code == 200
        refused = await http.post("/work_pools", json={"name": f"not-{name}"})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this key has scope read, run; this needs deploy"
        cancelled = await http.post(f"/flow_runs/{uuid.uuid4()}/cancel")
        assert cancelled.status_code == 404  # allowed to cancel; there is no such run

        # ls and revoke go through the API, with an admin key
        admin_env = live_server.client_env(BATON_HOME=str(tmp_path / "home"))
        listed = _baton(admin_env, "api-key", "ls")
        [row] = [line for line in listed.stdout.splitlines() if name in line]
        key_id = row.split()[0]
        assert "read run" in row

        # the change the run key made is in the audit log, for an admin

        def audited() -> str:
            shown = _baton(admin_env, "audit", "ls", "--key", name)
            return shown.stdout if "POST /api/flow_runs" in shown.stdout and "cancel" in shown.stdout else ""

        made_run = await http.post("/flow_runs", json={"flow_name": f"audited-{name}"})
        assert made_run.status_code == 201
        await http.post(f"/flow_runs/{made_run.json()['id']}/cancel")
        shown = await eventually(
            lambda: asyncio.to_thread(audited), what="the run key's changes in `baton audit ls`"
        )
        assert name in shown and "201" in shown
        not_admin = _baton({**admin_env, "BATON_API_KEY": runner}, "audit", "ls")
        assert not_admin.returncode == 1 and "this API key is not allowed" in not_admin.stderr

        revoked = _baton(admin_env, "api-key", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()

        async def refused_now() -> bool:
            return (await http.get("/flow_runs")).status_code == 401

        # documented: within twice BATON_API_KEY_REFRESH_SECONDS (5 s by default)
        await eventually(refused_now, timeout=10 + 2, what="the revoked key refused by the server")
        print(f"revoked key refused after {time.monotonic() - started:.1f} s")


async def test_whether_the_docs_need_a_key_is_a_setting(live_server: LiveServer, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=live_server.api_url) as http:
        assert (await http.get("/openapi.json")).status_code == 200  # public by default
        assert (await http.get("/docs")).status_code == 200
    with server_process(live_server.backends, tmp_path, BATON_API_DOCS_PUBLIC="false") as private:
        async with httpx.AsyncClient(base_url=private.api_url) as http:
            assert (await http.get("/openapi.json")).status_code == 401
            assert (await http.get("/docs")).status_code == 401
            keyed = {"Authorization": f"Bearer {live_server.api_key}"}
            assert (await http.get("/openapi.json", headers=keyed)).status_code == 200
