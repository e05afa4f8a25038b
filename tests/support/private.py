"""Private PostgreSQL and RabbitMQ instances for tests that break their backends on purpose.

The machine's own services are shared: by the other suites of this run, by other runs, by a
developer's `make dev`. A test that stops, kills, pauses or blocks a backend does it to one of
these instead:

    with private_rabbitmq() as mq:            # a second node: its own name, port and data dir
        url = mq.url("/")
        mq.stop_app(); mq.start_app()         # or pause() / resume(), kill(), block_publishers()

    with private_postgres() as pg:            # a cluster of its own on another port
        url = pg.url("postgres")
        pg.stop(); pg.start()                 # or pause() / resume(), kill()

Both are torn down (processes stopped, data removed) when the block ends, whatever happened in it.
They need the Debian packages of both servers and root (the servers run as their own users).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .processes import free_port
from .tls import TlsFiles

_RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
_RABBITMQCTL = "/usr/sbin/rabbitmqctl"


class PrivateInstanceError(RuntimeError):
    """A private instance could not be started or controlled; the message says why."""


def _run(args: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise PrivateInstanceError(
            f"{' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done


def _owned_dir(prefix: str, user: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(path, user, user)
    path.chmod(0o755)
    return path


def _signal_tree(pid: int, sig: signal.Signals) -> None:
    """`sig` to a process and every descendant (a server's backends and helpers too)."""
    children = _run(["pgrep", "-P", str(pid)], check=False).stdout.split()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    for child in children:
        _signal_tree(int(child), sig)


# --- RabbitMQ ---------------------------------------------------------------------------------


@dataclass
class PrivateRabbitMQ:
    node: str
    port: int
    home: Path
    # with `private_rabbitmq(tls=...)`: the amqps:// listener's port and the files it serves
    tls_port: int | None = None
    tls: TlsFiles | None = None

    @property
    def pid_file(self) -> Path:
        return self.home / "node.pid"

    def url(self, vhost: str = "/", *, user: str = "guest", password: str = "guest") -> str:
        path = "%2F" if vhost == "/" else vhost
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{path}"

    def tls_url(
        self, vhost: str = "/", *, user: str = "guest", password: str | None = "guest", **options: str
    ) -> str:
        """An amqps:// URL of the TLS listener, with `options` as its query (cafile=..., ...);
        `password=None` gives none (auth=external)."""
        if self.tls_port is None:
            raise PrivateInstanceError(
                "this node has no TLS listener: start it with private_rabbitmq(tls=...)"
            )
        path = "%2F" if vhost == "/" else vhost
        login = f"{user}@" if password is None else f"{user}:{password}@"
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"amqps://{login}127.0.0.1:{self.tls_port}/{path}" + (f"?{query}" if query else "")

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return _run([_RABBITMQCTL, "-q", "-n", self.node, *args], timeout=timeout).stdout

    def pid(self) -> int:
        return int(self.pid_file.read_text().split()[0])

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # not the machine's node name and listeners
        }

    def boot(self, *, timeout: float = 90) -> None:
        """Start the node (the wrapper runs it as the rabbitmq user) and wait until it serves."""
        subprocess.Popen(
            [_RABBITMQ_SERVER, "-detached"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).wait(timeout=30)
        self.await_up(timeout=timeout)

    def await_up(self, *, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = _run(
                [_RABBITMQCTL, "-q", "-n", self.node, "await_startup", "--timeout", "10"],
                check=False,
                timeout=30,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(
                    Path(p).read_text(errors="replace")[-2000:] for p in glob.glob(f"{self.home}/log/*")
                )
                raise PrivateInstanceError(f"RabbitMQ node {self.node} did not start: {done.stderr}\n{logs}")
            time.sleep(0.5)

    def add_vhost(self, vhost: str, user: str = "guest") -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")

    def stop_app(self) -> None:
        """The broker goes away (connections refused); the Erlang node stays."""
        self.ctl("stop_app", timeout=120)

    def start_app(self) -> None:
        self.ctl("start_app", timeout=120)
        self.await_up()

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as with a frozen VM."""
        _signal_tree(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        _signal_tree(self.pid(), signal.SIGCONT)

    def block_publishers(self) -> None:
        """A memory alarm: the broker sends connection.blocked and stops reading publishers."""
        self.ctl("set_vm_memory_high_watermark", "0.0000001")

    def unblock_publishers(self) -> None:
        self.ctl("set_vm_memory_high_watermark", "0.4")

    def kill(self) -> None:
        """kill -9 of the node; `boot()` starts it again on the same port and data."""
        _signal_tree(self.pid(), signal.SIGKILL)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.resume()
        with contextlib.suppress(Exception):
            self.ctl("stop", timeout=60)
        with contextlib.suppress(Exception):
            if self.pid_file.exists():
                _signal_tree(self.pid(), signal.SIGKILL)


def _tls_config(home: Path, port: int, files: TlsFiles) -> str:
    """An amqps:// listener that checks a client certificate when one is given (so PLAIN logins
    over TLS work without one) and logs in with EXTERNAL as the certificate's CN."""
    served = home / "tls"
    served.mkdir()
    for source in (files.ca, files.server_cert, files.server_key):
        shutil.copy(source, served / source.name)
    return (
        f"listeners.ssl.1 = 127.0.0.1:{port}\n"
        f"ssl_options.cacertfile = {served / files.ca.name}\n"
        f"ssl_options.certfile = {served / files.server_cert.name}\n"
        f"ssl_options.keyfile = {served / files.server_key.name}\n"
        "ssl_options.verify = verify_peer\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
        "auth_mechanisms.1 = PLAIN\n"
        "auth_mechanisms.2 = EXTERNAL\n"
        "ssl_cert_login_from = common_name\n"
    )


@contextlib.contextmanager
def private_rabbitmq(
    *, definitions: Path | None = None, tls: TlsFiles | None = None
) -> Iterator[PrivateRabbitMQ]:
    """A node of its own. With `definitions` (a definitions.json) it loads them at boot, as a
    deployment does, and so has no `guest` user; otherwise guest may log in from anywhere.
    With `tls` (`support.tls.make_certificates`) it also listens for amqps:// on `tls_port`,
    with the EXTERNAL mechanism (rabbitmq_auth_mechanism_ssl) beside PLAIN."""
    if not Path(_RABBITMQ_SERVER).exists():
        raise PrivateInstanceError("a private RabbitMQ needs the rabbitmq-server package")
    if os.geteuid() != 0:
        raise PrivateInstanceError(
            "a private RabbitMQ is started as the rabbitmq user: run the tests as root"
        )
    home = _owned_dir("baton-rabbitmq-", "rabbitmq")
    port = free_port()
    config = f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n"
    if definitions is not None:
        shutil.copy(definitions, home / "definitions.json")
        config += f"load_definitions = {home / 'definitions.json'}\n"
    tls_port = None if tls is None else free_port()
    if tls is not None and tls_port is not None:
        config += _tls_config(home, tls_port, tls)
    (home / "rabbitmq.conf").write_text(config)
    plugins = "" if tls is None else "rabbitmq_auth_mechanism_ssl"
    (home / "enabled_plugins").write_text(f"[{plugins}].\n")
    for path in [*home.iterdir(), *home.glob("tls/*")]:
        shutil.chown(path, "rabbitmq", "rabbitmq")
    mq = PrivateRabbitMQ(
        node=f"baton-{uuid.uuid4().hex[:8]}@localhost", port=port, home=home, tls_port=tls_port, tls=tls
    )
    try:
        mq.boot()
        yield mq
    finally:
        mq.shutdown()
        shutil.rmtree(home, ignore_errors=True)


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PrivateInstanceError("a private PostgreSQL needs the postgresql package (initdb not found)")
    return Path(found[-1]).parent


@dataclass
class PrivatePostgres:
    port: int
    data: Path
    bin: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        _run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)], timeout=timeout)

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-w",
            "-o",
            f"'{options}'",
            "start",
        )

    def stop(self) -> None:
        """A clean, fast stop: connections are closed, new ones refused."""
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        _signal_tree(self.pid(), signal.SIGKILL)

    def pause(self) -> None:
        _signal_tree(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        _signal_tree(self.pid(), signal.SIGCONT)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.resume()
        with contextlib.suppress(Exception):
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0:
        raise PrivateInstanceError(
            "a private PostgreSQL is started as the postgres user: run the tests as root"
        )
    data = _owned_dir("baton-postgres-", "postgres")
    pg = PrivatePostgres(port=free_port(), data=data, bin=_postgres_bin())
    try:
        pg._as_postgres(
            str(pg.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", timeout=120
        )
        pg.start()
        yield pg
    finally:
        pg.shutdown()
        shutil.rmtree(data, ignore_errors=True)
