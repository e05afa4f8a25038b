"""A private RabbitMQ node with an amqps:// listener (support.private), certificates made for
this run (support.tls), and a vhost on it that the guest user and the certificate's user share."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from ...support.private import PrivateRabbitMQ, private_rabbitmq
from ...support.tls import TlsFiles, make_certificates

VHOST = "baton-tls"


@pytest.fixture(scope="package")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="package")
def tls_mq(tls_files: TlsFiles) -> Iterator[PrivateRabbitMQ]:
    with private_rabbitmq(tls=tls_files) as mq:
        mq.add_vhost(VHOST)
        # the certificate's user: EXTERNAL logs it in by its CN; its password is never used
        mq.ctl("add_user", tls_files.client_cn, secrets.token_hex(16))
        mq.ctl("set_permissions", "-p", VHOST, tls_files.client_cn, ".*", ".*", ".*")
        yield mq
