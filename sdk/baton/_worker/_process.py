"""The `process` infrastructure: start a flow run's process and watch it.

Two launchers, one interface:
- `SpawnLauncher`: a fresh interpreter per run (the job template's `command`, by default
  `python -m baton._worker`); it dies with the worker (PR_SET_PDEATHSIG, set between fork and
  exec) and leads a process group of its own, so a cancel stops it and whatever it started.
- `ForkServerLauncher`: runs forked from pre-started processes (see `_forkserver`); used when
  the job keeps the default command.

Each run's stdout, stderr and Baton console output come back as asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from .._settings import CLAIM_ID_ENV
from ._forkserver import FORKSERVER_FD_ENV, MAX_PACKET
from ._job import CONSOLE_FD_ENV, FLOW_RUN_ID_ENV, JOB_FD_ENV, RunJob
from ._relay import RELAY_FD_ENV

logger = logging.getLogger("baton.worker")

DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "baton._worker")
STREAM_LIMIT = 1 << 20  # longest line read from a run's output; longer ones are split


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that sets PR_SET_PDEATHSIG=SIGKILL (libc resolved before any fork)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)

    return hook


@dataclass(eq=False)
class RunProcess:
    """A started flow-run process: its pid (also its process group), output streams and exit."""

    pid: int
    streams: dict[str, asyncio.StreamReader]
    exited: asyncio.Future[int]
    _closers: list[Callable[[], None]] = field(default_factory=list)

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    def signal_group(self, sig: int) -> bool:
        """Signal the run's process group; False if it is gone (once its leader has been
        reaped its id may be reused: it is never signalled again)."""
        if self.exited.done():
            return False
        try:
            os.killpg(self.pid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            try:
                os.kill(self.pid, sig)
                return True
            except OSError:
                return False

    def close(self) -> None:
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()


class Launcher(Protocol):
    async def start(self) -> None: ...

    def accepts(self, command: list[str] | None) -> bool: ...

    async def launch(
        self, job: RunJob, command: list[str] | None, env: dict[str, str], cwd: Path, relay_fd: int
    ) -> RunProcess: ...

    async def close(self) -> None: ...


async def _reader(fd: int) -> tuple[asyncio.StreamReader, Callable[[], None]]:
    """An asyncio stream over the read end of a pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    return reader, transport.close


def run_env(base: dict[str, str], job: RunJob, extra: dict[str, str]) -> dict[str, str]:
    env = {**base, **extra}
    env[CLAIM_ID_ENV] = str(job.claim_id)
    env[FLOW_RUN_ID_ENV] = job.flow_run_id
    return env


class SpawnLauncher:
    """A fresh interpreter (or the job's own command) per run."""

    def __init__(self) -> None:
        self._preexec = _die_with_parent_hook()

    async def start(self) -> None:
        pass

    def accepts(self, command: list[str] | None) -> bool:
        return True

    async def launch(
        self, job: RunJob, command: list[str] | None, env: dict[str, str], cwd: Path, relay_fd: int
    ) -> RunProcess:
        job_fd = job.to_fd()
        console_r, console_w = os.pipe()
        env = {**env, JOB_FD_ENV: str(job_fd), CONSOLE_FD_ENV: str(console_w), RELAY_FD_ENV: str(relay_fd)}
        try:
            process = await asyncio.create_subprocess_exec(
                *(command or DEFAULT_COMMAND),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(job_fd, console_w, relay_fd),
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=self._preexec,
                limit=STREAM_LIMIT,
            )
        except BaseException:
            os.close(console_r)
            raise
        finally:
            os.close(job_fd)
            os.close(console_w)
        console, close_console = await _reader(console_r)
        assert process.stdout is not None and process.stderr is not None
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def wait() -> None:
            code = await process.wait()
            if not exited.done():
                exited.set_result(code)

        waiter = asyncio.ensure_future(wait())
        streams = {"stdout": process.stdout, "stderr": process.stderr, "console": console}

        def stop_waiting() -> None:
            waiter.cancel()

        return RunProcess(process.pid, streams, exited, [close_console, stop_waiting])

    async def close(self) -> None:
        pass


class ForkServerLauncher:
    """Runs forked from a pre-started process that keeps `ready` forks waiting."""

    def __init__(self, ready: int, env: dict[str, str]) -> None:
        self.ready = ready
        self.env = env
        self._sock: socket.socket | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._seq = 0
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        self.server_pid: int | None = None

    def accepts(self, command: list[str] | None) -> bool:
        return command is None or tuple(command) == DEFAULT_COMMAND

    async def start(self) -> None:
        if self._sock is not None:  # a server that died: let go of its socket and process
            self._sock.close()
            self._sock = None
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        env = {**self.env, FORKSERVER_FD_ENV: str(theirs.fileno())}
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "baton._worker._forkserver",
                str(self.ready),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        finally:
            theirs.close()
        self._sock = ours
        self._ready = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read(), name="baton-forkserver")
        async with asyncio.timeout(60):
            await asyncio.shield(self._ready)

    async def _read(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self._sock, MAX_PACKET)
                if not data:
                    break
                self._on_message(orjson.loads(data))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._lost()

    def _on_message(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            self.server_pid = message.get("pid")
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif op in ("spawned", "failed"):
            future = self._spawns.pop(message["seq"], None)
            if future is not None and not future.done():
                if op == "spawned":
                    self._exits.setdefault(message["pid"], asyncio.get_running_loop().create_future())
                    future.set_result(message["pid"])
                else:
                    future.set_exception(RuntimeError(f"fork server: {message.get('error')}"))
        elif op == "exited":
            exit_future = self._exits.pop(message["pid"], None)
            if exit_future is not None and not exit_future.done():
                exit_future.set_result(int(message["code"]))

    def _lost(self) -> None:
        """The fork server is gone: its forks died with it (parent-death signal)."""
        error = RuntimeError("the fork server exited")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for future in self._spawns.values():
            if not future.done():
                future.set_exception(error)
        for exit_future in self._exits.values():
            if not exit_future.done():
                exit_future.set_result(-signal.SIGKILL)
        self._spawns.clear()
        self._exits.clear()

    @property
    def alive(self) -> bool:
        return self._reader_task is not None and not self._reader_task.done()

    async def _send(self, data: bytes, fds: list[int]) -> None:
        assert self._sock is not None
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:
                await asyncio.sleep(0.001)

    async def launch(
        self, job: RunJob, command: list[str] | None, env: dict[str, str], cwd: Path, relay_fd: int
    ) -> RunProcess:
        async with self._lock:
            if not self.alive:
                logger.warning("The fork server is gone; starting a new one")
                await self.start()
        job_fd = job.to_fd()
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, console
        loop = asyncio.get_running_loop()
        self._seq += 1
        seq = self._seq
        spawned: asyncio.Future[int] = loop.create_future()
        self._spawns[seq] = spawned
        try:
            request = orjson.dumps({"op": "spawn", "seq": seq, "env": env, "cwd": str(cwd)})
            await self._send(request, [job_fd, *(w for _, w in pipes), relay_fd])
        except BaseException:
            self._spawns.pop(seq, None)
            for r, _ in pipes:
                os.close(r)
            raise
        finally:
            os.close(job_fd)
            for _, w in pipes:
                os.close(w)
        try:
            pid = await spawned
        except BaseException:
            for r, _ in pipes:
                os.close(r)
            raise
        readers = [await _reader(r) for r, _ in pipes]
        streams = dict(zip(("stdout", "stderr", "console"), (r for r, _ in readers), strict=True))
        exited = self._exits.get(pid) or loop.create_future()
        return RunProcess(pid, streams, exited, [close for _, close in readers])

    async def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._process is not None and self._process.returncode is None:
            try:
                async with asyncio.timeout(5):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
