"""A broker URL, read the way aio-pika and aiormq read it, so that one `BATON_BROKER_URL` means
the same on every connection of a process, whichever client opens it.

    amqp[s]://user:password@host:port/vhost?heartbeat=15&timeout=10
        &cafile=ca.pem&capath=dir&certfile=client.pem&keyfile=client.key&no_verify_ssl=1
        &auth=external&name=my-connection

The query options are aiormq's, with its meanings (seconds for `heartbeat` and `timeout`). An
option this client does not know is refused, naming it: a misspelt `hearbeat=5` silently left at
the default is how a silent peer goes unnoticed for minutes.

With `auth=external` the broker logs the client in by its certificate, and the URL names the user
the broker maps that certificate to (`amqps://baton-server@host/vhost?auth=external&certfile=...`,
no password): RabbitMQ refuses a publish whose `user_id` is not the connection's user, and Baton
stamps `user_id` on the events it publishes, so it must know the name.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

# What a silent broker costs on the hot path: noticed after two missed beats (30 s), not the
# broker's proposed 60 s (two minutes of runs stuck on a dead connection).
DEFAULT_HEARTBEAT = 15
DEFAULT_TIMEOUT = 10.0

_TLS_OPTIONS = ("cafile", "capath", "certfile", "keyfile", "no_verify_ssl")
_OPTIONS = ("heartbeat", "timeout", "auth", "name", *_TLS_OPTIONS)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool
    heartbeat: int = DEFAULT_HEARTBEAT
    # None: the URL gives none (`connect_timeout` then takes the caller's, or 10 s)
    timeout: float | None = None
    auth: str = "PLAIN"
    name: str | None = None
    cafile: str | None = None
    capath: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    verify: bool = True

    @classmethod
    def parse(cls, url: str) -> Address:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"not an AMQP URL (amqp:// or amqps://): {_safe(url)!r}")
        tls = parts.scheme == "amqps"
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if key not in _OPTIONS:
                known = ", ".join(_OPTIONS)
                raise ValueError(f"the broker URL has an option this client does not know: {key!r} ({known})")
            if key in query:
                raise ValueError(f"the broker URL gives {key!r} twice")
            query[key] = value
        if not tls and (given := [key for key in _TLS_OPTIONS if key in query]):
            raise ValueError(f"TLS options ({', '.join(given)}) in an amqp:// URL: use amqps://")
        if "keyfile" in query and "certfile" not in query:
            raise ValueError("the broker URL gives keyfile without certfile")
        auth = query.get("auth", "plain").upper()
        if auth not in ("PLAIN", "EXTERNAL"):
            raise ValueError(f"auth={query['auth']!r} in the broker URL: plain or external")
        if auth == "EXTERNAL" and "certfile" not in query:
            raise ValueError("auth=external logs in with a client certificate: give certfile (and keyfile)")
        if auth == "EXTERNAL" and not parts.username:
            raise ValueError(
                "auth=external: name the user the broker maps the certificate to "
                "(amqps://NAME@host/...): it is the user_id of what Baton publishes"
            )
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if tls else 5672),
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=unquote(path) if path else "/",
            tls=tls,
            heartbeat=int(_seconds(query, "heartbeat", DEFAULT_HEARTBEAT, whole=True)),
            timeout=_seconds(query, "timeout", DEFAULT_TIMEOUT, whole=False) if "timeout" in query else None,
            auth=auth,
            name=query.get("name") or None,
            cafile=query.get("cafile") or None,
            capath=query.get("capath") or None,
            certfile=query.get("certfile") or None,
            keyfile=query.get("keyfile") or None,
            verify=not _flag(query, "no_verify_ssl"),
        )

    def connect_timeout(self, fallback: float | None = None) -> float:
        """How long opening a connection may take: the URL's `timeout` when it gives one (it
        means the same on every connection, whatever the caller's default), else `fallback`,
        else 10 s."""
        if self.timeout is not None:
            return self.timeout
        return DEFAULT_TIMEOUT if fallback is None else fallback

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context an amqps:// URL asks for (None for amqp://)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile, capath=self.capath)
        if self.certfile is not None:
            context.load_cert_chain(self.certfile, self.keyfile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def login_user(url: str) -> str:
    """The user a broker URL connects as: the `user_id` its publishes may carry."""
    return Address.parse(url).user


def _seconds(query: dict[str, str], key: str, default: float, *, whole: bool) -> int | float:
    if key not in query:
        return int(default) if whole else default
    raw = query[key]
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number of seconds" if whole else "seconds"
        raise ValueError(f"{key}={raw!r} in the broker URL: {kind}") from None
    if value < 0 or (whole and value > 65535):
        raise ValueError(f"{key}={raw!r} in the broker URL is out of range")
    if key == "timeout" and value == 0:
        raise ValueError("timeout=0 in the broker URL: a connection timeout must be positive")
    return value


def _flag(query: dict[str, str], key: str) -> bool:
    raw = query.get(key, "0").lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{key}={query[key]!r} in the broker URL: 1 or 0")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
