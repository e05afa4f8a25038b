"""Pre-started flow-run processes (`baton worker start --prestart N`).

A fork server, started once by the worker, imports Baton, its schemas and the AMQP client
(the ~0.3 s every fresh interpreter pays) and keeps N forks of itself ready. A run is handed
to a ready fork over its socket, with its job, its stdout / stderr / console and its relay
(descriptors, SCM_RIGHTS); the fork takes them, moves to its own session, applies the job's environment and
working directory and runs the flow, while the server forks a replacement. Every fork dies
with the server and the server with the worker (PR_SET_PDEATHSIG), so a killed worker leaves
no process behind.

Messages are JSON over SOCK_SEQPACKET sockets (one message per packet):
    worker -> server: {"op": "spawn", "seq": n, "env": {...}, "cwd": "..."} + 5 fds
    server -> worker: {"op": "ready"}, {"op": "spawned", "seq": n, "pid": p},
                      {"op": "failed", "seq": n, "error": "..."}, {"op": "exited", "pid": p, "code": c}
"""

from __future__ import annotations

import importlib
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any

import orjson

from .._settings import ClientSettings
from ._job import EXIT_UNREPORTED, read_job_fd

FORKSERVER_FD_ENV = "BATON_FORKSERVER_FD"
MAX_PACKET = 1 << 20
_FDS_PER_JOB = 5  # job, stdout, stderr, console, relay


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = orjson.dumps(message)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


# --- in a ready fork -------------------------------------------------------------------------


def _ready_fork(channel: socket.socket, server_pid: int) -> None:
    """A pre-started process: wait for a job, then become its flow run's process. Never returns."""
    from ._child import die_with_parent, finish, run

    code = EXIT_UNREPORTED
    try:
        die_with_parent(server_pid)
        data, fds, _, _ = socket.recv_fds(channel, MAX_PACKET, _FDS_PER_JOB)
        channel.close()
        if not data or len(fds) != _FDS_PER_JOB:
            finish(0)  # the server closed our socket: not needed any more
        request = orjson.loads(data)
        job_fd, stdout_fd, stderr_fd, console_fd, relay_fd = fds
        os.setsid()  # a process group of its own: a cancel stops the run and what it started
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.close(stdout_fd)
        os.close(stderr_fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        if sys.path and sys.path[0] == request.get("server_cwd"):
            sys.path[0] = request["cwd"]  # as `python -m` in the run's working directory would
        code = run(read_job_fd(job_fd), console_fd, relay_fd)
    except BaseException:
        traceback.print_exc()
    finish(code)


# --- the server ------------------------------------------------------------------------------


class _Server:
    def __init__(self, worker: socket.socket, ready_count: int) -> None:
        self.worker = worker
        self.ready_count = max(1, ready_count)
        self.ready: list[tuple[int, socket.socket]] = []  # (pid, our end of its channel)
        self.started: set[int] = set()  # forks that took a job: their exits are reported
        self.cwd = os.getcwd()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def fork_ready(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                for _, other in self.ready:
                    other.close()
                self.worker.close()
                ours.close()
                os.close(self.wake_r)
                os.close(self.wake_w)
            except BaseException:
                os._exit(1)
            _ready_fork(theirs, server_pid)
        theirs.close()
        self.ready.append((pid, ours))

    def spawn(self, data: bytes, fds: list[int]) -> None:
        request = orjson.loads(data)
        seq = request.get("seq")
        try:
            if len(fds) != _FDS_PER_JOB:
                raise RuntimeError(f"expected {_FDS_PER_JOB} descriptors, got {len(fds)}")
            while not self.ready:
                self.fork_ready()
            pid, channel = self.ready.pop(0)
            request["server_cwd"] = self.cwd
            _send(channel, request, fds)
            channel.close()
            self.started.add(pid)
            _send(self.worker, {"op": "spawned", "seq": seq, "pid": pid})
        except Exception as exc:
            _send(self.worker, {"op": "failed", "seq": seq, "error": repr(exc)})
        finally:
            for fd in fds:
                os.close(fd)
        self.refill()

    def refill(self) -> None:
        while len(self.ready) < self.ready_count:
            self.fork_ready()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            if pid in self.started:
                self.started.discard(pid)
                _send(self.worker, {"op": "exited", "pid": pid, "code": code})
            else:  # a ready fork died before it got a job
                self.ready = [(p, c) for p, c in self.ready if p != pid]

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.refill()
        _send(self.worker, {"op": "ready", "pid": os.getpid()})
        selector = selectors.DefaultSelector()
        selector.register(self.worker, selectors.EVENT_READ, "worker")
        selector.register(self.wake_r, selectors.EVENT_READ, "child")
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                    self.refill()
                    continue
                data, fds, _, _ = socket.recv_fds(self.worker, MAX_PACKET, _FDS_PER_JOB)
                if not data:  # the worker closed the socket: stop
                    return
                self.spawn(data, fds)
            self.reap()


# What every flow run needs, imported once by the server instead of once per run.
PRELOAD = (
    "httpx",
    "pydantic_settings",
    "tenacity",
    "baton._flow_engine",
    "baton._flows",
    "baton._task_runners",
    "baton._validation",
    "baton._task_engine",
    "baton._runtime",
    "baton._reporting._remote",
    "baton._results",
    "baton._transport.amqp",
    "baton._transport.http",
    "baton._worker._child",
    "baton._entrypoints",
    "baton._worker._pull_steps",
    "baton._worker._relay",
    "baton_schemas.envelopes",
    "baton_schemas.runs",
)


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    ClientSettings()  # builds pydantic-settings' machinery once


def main() -> None:
    from ._child import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    worker = socket.socket(fileno=int(os.environ.pop(FORKSERVER_FD_ENV)))
    ready_count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    _preload()
    _Server(worker, ready_count).serve()


if __name__ == "__main__":
    main()
