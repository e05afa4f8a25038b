"""`baton._amqp` over amqps:// to a real RabbitMQ with a TLS listener: what each URL option of
`baton._amqp.address` does on a real connection (CA file, no-verify, client certificate with
EXTERNAL, heartbeat, connection timeout), and an option it does not know refused."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from baton._amqp import Connection, Delivery, Properties, TlsRefused
from baton._transport import TransportUnavailable
from baton._transport.amqp import AmqpTracker

from ...support.private import PrivateRabbitMQ
from ...support.tls import TlsFiles
from .conftest import VHOST

WAIT = 10.0  # the deadline for anything the broker should do at once


def _name(what: str) -> str:
    return f"baton-tls-test-{what}-{uuid.uuid4().hex[:8]}"


async def _round_trip(url: str) -> Connection:
    """Open, publish with a confirm, consume it back: the connection carries real traffic."""
    connection = await Connection.open(url, name=_name("connection"))
    channel = await connection.channel(confirms=True)
    queue, _, _ = await channel.declare_queue(_name("q"), exclusive=True)
    body = uuid.uuid4().bytes
    confirmed = channel.publish("", queue, body, Properties(message_id="m-1"), mandatory=True)
    assert confirmed is not None
    await asyncio.wait_for(confirmed, WAIT)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.consume(queue, deliveries.put_nowait)
    got = await asyncio.wait_for(deliveries.get(), WAIT)
    assert (got.body, got.message_id) == (body, "m-1")
    got.ack()
    return connection


def _connection_row(mq: PrivateRabbitMQ, name: str) -> dict[str, Any]:
    """What the broker says of the connection the client named `name` (its side of things)."""
    fields = ("ssl", "auth_mechanism", "user", "timeout", "vhost", "client_properties")
    rows = json.loads(mq.ctl("list_connections", *fields, "--formatter", "json"))
    for row in rows:
        if name in json.dumps(row["client_properties"]):
            return dict(row)
    raise AssertionError(f"the broker has no connection named {name!r}: {rows}")


async def test_the_ca_file_verifies_the_broker(tls_mq: PrivateRabbitMQ, tls_files: TlsFiles) -> None:
    name = _name("ca")
    connection = await _round_trip(tls_mq.tls_url(VHOST, cafile=str(tls_files.ca), name=name))
    try:
        row = _connection_row(tls_mq, name)
        assert (row["ssl"], row["auth_mechanism"], row["user"]) == (True, "PLAIN", "guest")
    finally:
        await connection.close()


async def test_a_broker_the_ca_file_did_not_sign_is_refused_saying_why(
    tls_mq: PrivateRabbitMQ, tls_files: TlsFiles
) -> None:
    url = tls_mq.tls_url(VHOST, cafile=str(tls_files.other_ca))
    with pytest.raises(TlsRefused) as refused:
        await Connection.open(url, name=_name("wrong-ca"))
    message = str(refused.value)
    assert f"127.0.0.1:{tls_mq.tls_port}" in message
    assert "did not verify" in message and str(tls_files.other_ca) in message
    # without cafile, the system's CAs do not know this throwaway CA either
    with pytest.raises(TlsRefused, match="the system's CA certificates"):
        await Connection.open(tls_mq.tls_url(VHOST), name=_name("system-ca"))


async def test_no_verify_connects_to_the_same_broker(tls_mq: PrivateRabbitMQ) -> None:
    connection = await _round_trip(tls_mq.tls_url(VHOST, no_verify_ssl="1"))
    await connection.close()


async def test_a_client_certificate_logs_in_with_external_and_no_password(
    tls_mq: PrivateRabbitMQ, tls_files: TlsFiles
) -> None:
    name = _name("external")
    url = tls_mq.tls_url(
        VHOST,
        user=tls_files.client_cn,
        password=None,
        cafile=str(tls_files.ca),
        certfile=str(tls_files.client_cert),
        keyfile=str(tls_files.client_key),
        auth="external",
        name=name,
    )
    assert f"//{tls_files.client_cn}@" in url  # a user and no password
    connection = await _round_trip(url)
    try:
        row = _connection_row(tls_mq, name)
        assert (row["auth_mechanism"], row["user"]) == ("EXTERNAL", tls_files.client_cn)
        # RabbitMQ checks user_id against the connection's user: the name the URL gives is it
        channel = await connection.channel(confirms=True)
        queue, _, _ = await channel.declare_queue(_name("q"), exclusive=True)
        stamped = channel.publish("", queue, b"{}", Properties(user_id=tls_files.client_cn))
        assert stamped is not None
        await asyncio.wait_for(stamped, WAIT)
    finally:
        await connection.close()


async def test_external_without_a_client_certificate_is_refused_before_connecting(
    tls_mq: PrivateRabbitMQ, tls_files: TlsFiles
) -> None:
    url = tls_mq.tls_url(VHOST, user=tls_files.client_cn, cafile=str(tls_files.ca), auth="external")
    with pytest.raises(ValueError, match="give certfile"):
        await Connection.open(url, name=_name("external-no-cert"))


async def test_the_heartbeat_in_the_url_is_what_the_broker_agrees_to(
    tls_mq: PrivateRabbitMQ, tls_files: TlsFiles
) -> None:
    name = _name("heartbeat")
    url = tls_mq.tls_url(VHOST, cafile=str(tls_files.ca), heartbeat="7", name=name)
    connection = await Connection.open(url, name="unused")
    try:
        assert connection.heartbeat == 7
        assert _connection_row(tls_mq, name)["timeout"] == 7  # the broker's view of it
    finally:
        await connection.close()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP and never says a word: a TLS handshake to it never ends."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


async def test_the_connection_timeout_in_the_url_bounds_the_open(
    silent_listener: int, tls_files: TlsFiles
) -> None:
    url = f"amqps://guest:guest@127.0.0.1:{silent_listener}/?cafile={tls_files.ca}&timeout=0.5"
    # the URL's 0.5 s, not the default 10 s, ends the wait: the outer 8 s never expires
    async with asyncio.timeout(8) as outer:
        with pytest.raises(TimeoutError):
            await Connection.open(url, name=_name("timeout"))
    assert not outer.expired()


async def test_the_url_timeout_wins_over_a_callers_default(silent_listener: int, tls_files: TlsFiles) -> None:
    """A worker and a flow pass BATON_REQUEST_TIMEOUT as their connect timeout: the URL's own
    `timeout` still bounds the open, as it does on the server's connections."""
    url = f"amqps://guest:guest@127.0.0.1:{silent_listener}/?cafile={tls_files.ca}&timeout=0.5"
    async with asyncio.timeout(8) as outer:
        with pytest.raises(TransportUnavailable, match="TimeoutError"):
            await AmqpTracker.connect(url, connect_timeout=30, name=_name("tracker-timeout"))
    assert not outer.expired()


async def test_an_option_the_client_does_not_know_is_refused_naming_it(
    tls_mq: PrivateRabbitMQ, tls_files: TlsFiles
) -> None:
    url = tls_mq.tls_url(VHOST, cafile=str(tls_files.ca), ssl_version="TLSv1_2")
    with pytest.raises(ValueError, match="option this client does not know: 'ssl_version'"):
        await Connection.open(url, name=_name("unknown"))
