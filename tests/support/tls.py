"""A throwaway certificate authority for TLS tests, made with the `openssl` command at test time.

    files = make_certificates(folder)
    files.ca, files.server_cert, files.server_key    # the broker's side (CN/SAN 127.0.0.1, localhost)
    files.client_cert, files.client_key              # a client certificate, CN = CLIENT_CN
    files.other_ca                                   # a CA that signed none of them

Keys are EC P-256 (quick to make); every certificate carries the key identifiers and key usages
that Python's strict verification (VERIFY_X509_STRICT) asks for.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CLIENT_CN = "baton-tls-client"


class CertificateError(RuntimeError):
    """openssl is missing or refused to make a certificate; the message says why."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    client_cn: str = CLIENT_CN

    def all(self) -> list[Path]:
        return [self.ca, self.server_cert, self.server_key, self.client_cert, self.client_key, self.other_ca]


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise CertificateError(f"openssl {' '.join(args)} failed: {done.stderr}")


def _authority(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    return cert, key


def _leaf(folder: Path, name: str, cn: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n" + extensions
    )
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={cn}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    request.unlink()
    ext.unlink()
    return cert, key


def make_certificates(folder: Path) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a second
    CA that signed neither, all in `folder`."""
    if shutil.which("openssl") is None:
        raise CertificateError("TLS tests make their certificates with the openssl command")
    folder.mkdir(parents=True, exist_ok=True)
    ca = _authority(folder, "baton-test-ca")
    server = _leaf(
        folder,
        "server",
        "127.0.0.1",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client = _leaf(folder, "client", CLIENT_CN, ca, "extendedKeyUsage=clientAuth\n")
    other_ca, _ = _authority(folder, "other-ca")
    return TlsFiles(ca[0], server[0], server[1], client[0], client[1], other_ca)
