"""scripts/services.sh on machines without PostgreSQL or RabbitMQ: it starts what is installed,
uses a Docker engine, installs with apt on Debian as root, or says exactly what to install.

Each case runs the real script in a subprocess whose PATH holds every command of this machine
except the services' own (and Docker's), and which looks for the services on ports where nothing
listens: the machine's own PostgreSQL and RabbitMQ are neither hidden from other tests nor
touched. Where a case needs apt-get, pg_ctlcluster, rabbitmq-server or docker, a stand-in
records its arguments and, for a start, opens the port the real one would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ...support.processes import ROOT, free_port
from ..worker.conftest import wait_until

SCRIPT = ROOT / "scripts" / "services.sh"
HIDDEN_PREFIXES = ("pg_", "postgres", "psql", "rabbitmq", "docker", "dockerd", "containerd", "initdb")
HIDDEN = {"apt-get", "id", "epmd", "erl"}

LISTENER = """
import socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
time.sleep(600)
"""


@dataclass
class Machine:
    """A PATH without the services, free ports for them, and a log of the stand-ins' calls."""

    bin: Path
    home: Path
    pg_port: int
    amqp_port: int
    os_release: Path

    @property
    def calls(self) -> list[str]:
        log = self.home / "calls"
        return log.read_text().splitlines() if log.exists() else []

    @property
    def packages(self) -> Path:
        """Commands that apt-get "installs" (moves onto the PATH)."""
        return self.home / "packages"

    def stand_in(self, name: str, body: str, *, folder: Path | None = None, record: bool = True) -> None:
        """A command of this name: logs `name args...` (if `record`), then runs `body` (bash)."""
        path = (folder or self.bin) / name
        path.parent.mkdir(exist_ok=True)
        log = f'echo "{name} $*" >>"{self.home}/calls"\n' if record else ""
        path.write_text(f"#!/bin/bash\n{log}{textwrap.dedent(body)}\n")
        path.chmod(0o755)

    def listen(self, port_variable: str) -> str:
        """bash that opens the port a started service would, until the test ends."""
        return (
            f'nohup {sys.executable} "{self.home}/listen.py" "${port_variable}" >/dev/null 2>&1 &\n'
            f'echo $! >>"{self.home}/pids"'
        )

    def run(self, *, command: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "SERVICES_PG_PORT": str(self.pg_port),
            "SERVICES_AMQP_PORT": str(self.amqp_port),
            "SERVICES_OS_RELEASE": str(self.os_release),
            "SERVICES_PG_CONF_ROOT": str(self.home / "etc-postgresql"),
            "SERVICES_BIN": str(self.home / "baton-bin"),
            "SERVICES_WAIT_SECONDS": "20",
            "SERVICES_RABBITMQ_DATA": str(self.home / "no-rabbitmq-runs-here"),
            **env,
        }
        argv = ["/bin/bash", "-c", command] if command else ["/bin/bash", str(SCRIPT)]
        return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for entry in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
            name = entry.name
            if name in HIDDEN or name.startswith(HIDDEN_PREFIXES) or (bin_dir / name).exists():
                continue
            if os.access(entry, os.X_OK) and not entry.is_dir():
                (bin_dir / name).symlink_to(entry)
    (tmp_path / "listen.py").write_text(LISTENER)
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=debian\nVERSION_ID="12"\n')
    found = Machine(bin_dir, tmp_path, free_port(), free_port(), os_release)
    found.stand_in(
        "id", 'if [ "$1" = -u ]; then echo "${FAKE_UID:-0}"; else /usr/bin/id "$@"; fi', record=False
    )
    try:
        yield found
    finally:
        pids = tmp_path / "pids"
        for pid in pids.read_text().split() if pids.exists() else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


MESSAGE_BOTH = (
    "baton: install and start PostgreSQL 15+ on 127.0.0.1:{pg} (user postgres, trust) and "
    "RabbitMQ 3.10+ on 127.0.0.1:{amqp} (guest/guest), or install Docker "
    "(then this starts them from deploy/compose.yaml)"
)


def test_on_another_system_it_says_exactly_what_to_install(machine: Machine) -> None:
    machine.os_release.write_text('ID=fedora\nVERSION_ID="40"\n')
    done = machine.run()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [MESSAGE_BOTH.format(pg=machine.pg_port, amqp=machine.amqp_port)]
    assert done.stdout == ""


def test_on_debian_without_root_it_says_exactly_what_to_install(machine: Machine) -> None:
    machine.stand_in("apt-get", "exit 1")
    done = machine.run(FAKE_UID="1000")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [MESSAGE_BOTH.format(pg=machine.pg_port, amqp=machine.amqp_port)]
    assert machine.calls == []  # apt-get was not tried


def test_it_names_only_what_is_missing(machine: Machine) -> None:
    machine.os_release.write_text("ID=arch\n")
    with socket.socket() as postgres:  # something answers on PostgreSQL's port
        postgres.bind(("127.0.0.1", machine.pg_port))
        postgres.listen()
        done = machine.run()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"baton: install and start RabbitMQ 3.10+ on 127.0.0.1:{machine.amqp_port} (guest/guest), "
        "or install Docker (then this starts them from deploy/compose.yaml)"
    ]


def test_services_that_answer_need_nothing(machine: Machine) -> None:
    machine.stand_in("apt-get", "exit 1")
    done = machine.run(SERVICES_PG_PORT="5432", SERVICES_AMQP_PORT="5672")  # the machine's own
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert machine.calls == []


def test_on_debian_as_root_it_installs_both_with_apt_and_starts_them(machine: Machine) -> None:
    conf = machine.home / "etc-postgresql" / "15" / "main"
    conf.mkdir(parents=True)
    (conf / "pg_hba.conf").write_text("local all postgres peer\n")
    # what the packages install: the commands that start each service
    machine.stand_in(
        "pg_lsclusters",
        'echo "15 main $SERVICES_PG_PORT down postgres /var/lib/postgresql/15/main log"',
        folder=machine.packages,
        record=False,
    )
    machine.stand_in("pg_ctlcluster", machine.listen("SERVICES_PG_PORT"), folder=machine.packages)
    machine.stand_in("rabbitmq-server", machine.listen("SERVICES_AMQP_PORT"), folder=machine.packages)
    machine.stand_in("apt-get", f'[ "$1" != install ] || mv "{machine.packages}"/* "{machine.bin}/"')

    done = machine.run()

    assert done.returncode == 0, done.stderr
    assert machine.calls == [
        "apt-get update -qq",
        "apt-get install -y -qq postgresql rabbitmq-server",
        "pg_ctlcluster --skip-systemctl-redirect 15 main start",
        "rabbitmq-server -detached",
    ]
    hba = (conf / "pg_hba.conf").read_text().splitlines()
    assert hba[1:3] == ["host all all 127.0.0.1/32 trust", "host all all ::1/128 trust"]
    assert hba[-1] == "local all postgres peer"
    assert "installing postgresql rabbitmq-server with apt-get" in done.stderr


def _docker_stand_in(machine: Machine, await_startup: str = "") -> None:
    """`docker`: an engine that answers; `compose ... up` opens the services' ports; the
    container's `rabbitmqctl await_startup` runs `await_startup` (bash; succeeds if empty)."""
    calls = machine.home / "calls"
    machine.stand_in(
        "docker",
        f"""
        case "$1 $2" in
          "info "*|"compose version") exit 0 ;;
        esac
        case " $* " in
          *" up "*)
            echo "with $POSTGRES_USER $POSTGRES_HOST_AUTH_METHOD $BATON_RABBITMQ_CONF" >>"{calls}"
            {machine.listen("SERVICES_PG_PORT")}
            {machine.listen("SERVICES_AMQP_PORT")}
            touch "{machine.home}/pair-up" ;;
          *" ps -q rabbitmq "*) [ ! -e "{machine.home}/pair-up" ] || echo 0123abcd ;;
          *" await_startup "*) {await_startup or "exit 0"} ;;
        esac
        """,
    )


def _compose_calls(machine: Machine) -> list[str]:
    return [call for call in machine.calls if not call.startswith(("docker info", "docker compose version"))]


COMPOSE = f"docker compose -p baton-dev -f {ROOT}/deploy/compose.yaml"
USE_PAIR = 'source scripts/services.sh && echo "$BATON_TEST_USE_CONTAINERS" && command -v rabbitmqctl'


def test_with_a_docker_engine_it_starts_both_from_compose(machine: Machine) -> None:
    _docker_stand_in(machine)
    machine.stand_in("apt-get", "exit 1")

    done = machine.run(command=USE_PAIR)

    assert done.returncode == 0, done.stderr
    assert _compose_calls(machine) == [
        f"{COMPOSE} up -d postgres rabbitmq",
        "with postgres trust ./rabbitmq/dev.conf",
        f"{COMPOSE} exec -T rabbitmq rabbitmqctl -q await_startup --timeout 5",
    ]
    # the tests' rabbitmqctl is the container's
    assert done.stdout.splitlines() == ["no", str(machine.home / "baton-bin" / "rabbitmqctl")]
    shim = (machine.home / "baton-bin" / "rabbitmqctl").read_text()
    assert (
        f'exec docker compose -p baton-dev -f "{ROOT}/deploy/compose.yaml" exec -T rabbitmq rabbitmqctl "$@"'
        in shim
    )

    # the next run finds them up, and still uses the container's rabbitmqctl
    (machine.home / "calls").unlink()
    again = machine.run(command=USE_PAIR)
    assert again.returncode == 0, again.stderr
    assert _compose_calls(machine) == [f"{COMPOSE} ps -q rabbitmq"]
    assert again.stdout.splitlines() == ["no", str(machine.home / "baton-bin" / "rabbitmqctl")]


def test_the_containers_rabbitmq_is_asked_again_until_it_has_booted(machine: Machine) -> None:
    """Docker's proxy answers on the published port before the node runs, and `rabbitmqctl
    await_startup` fails at once while epmd does not know the node yet (seen for real with
    scripts/docker-check.sh): services.sh asks again instead of failing the run."""
    tries = machine.home / "await-tries"
    # the first two find no node, as a booting container's rabbitmqctl does
    booting = '{ echo "node rabbit not running at all" >&2; exit 69; }'
    _docker_stand_in(machine, f'echo x >>"{tries}"; [ "$(wc -l <"{tries}")" -ge 3 ] || {booting}')
    machine.stand_in("apt-get", "exit 1")

    done = machine.run(command=USE_PAIR)

    assert done.returncode == 0, done.stderr
    awaits = [call for call in _compose_calls(machine) if "await_startup" in call]
    assert len(awaits) == 3


def test_a_containers_rabbitmq_that_never_boots_is_named(machine: Machine) -> None:
    _docker_stand_in(machine, "exit 69")
    machine.stand_in("apt-get", "exit 1")

    done = machine.run(command=USE_PAIR, SERVICES_WAIT_SECONDS="2")

    assert done.returncode != 0
    assert "RabbitMQ in its container did not boot within 2s" in done.stderr


def test_it_never_starts_a_second_rabbitmq_over_a_running_nodes_data(machine: Machine) -> None:
    """A node that runs but does not answer here (another network namespace, another port) keeps
    its data to itself: starting the installed node again would run two on one directory."""
    data = machine.home / "rabbitmq-data"
    (data / "rabbit@here").mkdir(parents=True)
    beam = machine.home / "beam.smp"  # a process by the node's name, holding a file of its data
    beam.symlink_to(sys.executable)
    hold = f"f = open({str(data / 'rabbit@here' / 'held')!r}, 'w'); import time; time.sleep(600)"
    with subprocess.Popen([str(beam), "-c", hold]) as node:
        try:
            held = data / "rabbit@here" / "held"
            wait_until(lambda: held.exists(), what="the stand-in node to hold its file")
            machine.stand_in("rabbitmq-server", machine.listen("SERVICES_AMQP_PORT"))
            machine.os_release.write_text("ID=arch\n")
            with socket.socket() as postgres:
                postgres.bind(("127.0.0.1", machine.pg_port))
                postgres.listen()
                done = machine.run(SERVICES_RABBITMQ_DATA=str(data))
        finally:
            node.kill()
    assert done.returncode == 1
    assert "rabbitmq-server -detached" not in machine.calls
    assert f"a RabbitMQ node runs on {data} but does not answer" in done.stderr
