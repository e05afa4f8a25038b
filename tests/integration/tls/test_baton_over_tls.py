"""A whole Baton over amqps://: `baton server start` logs in with its client certificate
(EXTERNAL) and a `baton worker start` with a password, both verifying the broker against the
run's CA, and a flow run goes to Completed. Its own database and vhost (chaos._cluster)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from ...chaos._cluster import Db, cluster
from ...support.backends import Backends
from ...support.private import PrivateRabbitMQ
from ...support.processes import BATON, baton_env, free_port
from ...support.tls import TlsFiles
from ...support.waiting import eventually


def test_a_flow_run_completes_with_server_and_worker_on_tls(
    backends: Backends, tls_mq: PrivateRabbitMQ, tls_files: TlsFiles, tmp_path: Path
) -> None:
    def worker_url(vhost: str) -> str:
        return tls_mq.tls_url(vhost, cafile=str(tls_files.ca), heartbeat="10")

    with cluster(backends, tls_mq, tmp_path, url=worker_url) as baton:
        vhost = baton.backends.vhost
        tls_mq.ctl("set_permissions", "-p", vhost, tls_files.client_cn, ".*", ".*", ".*")
        server_url = tls_mq.tls_url(
            vhost,
            user=tls_files.client_cn,
            password=None,
            auth="external",
            cafile=str(tls_files.ca),
            certfile=str(tls_files.client_cert),
            keyfile=str(tls_files.client_key),
            name="baton-server-tls",
        )
        baton.server_env["BATON_BROKER_URL"] = server_url
        server = baton.start_server()
        assert server.env["BATON_BROKER_URL"] == server_url
        baton.start_worker()
        gate = tmp_path / "gate"
        gate.touch()  # the flow finishes as soon as it starts
        deployment = baton.deployment()
        run_id = baton.run(deployment, path=str(tmp_path / "notes"), gate=str(gate))

        db = Db(baton.backends.database_url)

        async def completed() -> bool:
            return await db.state(run_id) == "COMPLETED"

        asyncio.run(eventually(completed, timeout=60, what=f"flow run {run_id} Completed"))
        assert baton.notes(tmp_path / "notes") == [(run_id, "start"), (run_id, "done")]
        assert asyncio.run(db.history(run_id))[-1] == "Completed"

        # both kinds of login really were over TLS, as their URLs say
        listing = tls_mq.ctl(
            "list_connections", "ssl", "auth_mechanism", "user", "vhost", "timeout", "--formatter", "json"
        )
        logins = {
            (c["ssl"], c["auth_mechanism"], c["user"], c["vhost"], c["timeout"]) for c in json.loads(listing)
        }
        # the server's URL leaves the heartbeat at the client's 15 s; the worker's asks for 10 s
        assert (True, "EXTERNAL", tls_files.client_cn, vhost, 15) in logins
        assert (True, "PLAIN", "guest", vhost, 10) in logins
        assert all(ssl is True for ssl, *_ in logins), logins


def test_a_server_whose_ca_did_not_sign_the_broker_says_so_and_exits(
    backends: Backends, tls_mq: PrivateRabbitMQ, tls_files: TlsFiles, tmp_path: Path
) -> None:
    def wrong_ca(vhost: str) -> str:
        return tls_mq.tls_url(vhost, cafile=str(tls_files.other_ca))

    with cluster(backends, tls_mq, tmp_path, url=wrong_ca) as baton:
        env = baton_env(baton.backends, BATON_API_PORT=str(free_port()))
        done = subprocess.run([BATON, "server", "start"], env=env, capture_output=True, text=True, timeout=90)
    said = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
    assert done.returncode == 1, said
    assert "could not start" in said and "did not verify" in said and "Traceback" not in said
    assert "cafile=" in said
