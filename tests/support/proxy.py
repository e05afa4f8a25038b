"""A TCP proxy in the test's own event loop, to stand between a client and the broker and stop
forwarding on demand: a silent peer (missed heartbeats) or a socket that takes no more
(back-pressure), without touching the shared broker.

    async with TcpProxy("127.0.0.1", 5672) as proxy:
        url = proxy.url(broker_url)
        proxy.freeze()   # bytes stay where they are, in both directions; the sockets stay open
        proxy.thaw()
        proxy.hold_replies_after(b"marker")  # the client's bytes with it go on; from then on
        proxy.thaw()                         # nothing reaches the client until thawed

`ThreadedProxy` runs one on a thread of its own, for tests whose waits block.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self._to_broker = asyncio.Event()
        self._to_broker.set()
        self._to_client = asyncio.Event()
        self._to_client.set()
        self._trap: bytes | None = None
        self.trapped = asyncio.Event()  # set when the marker went by
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = (
            f"{credentials}@127.0.0.1:{self.listen_port}" if credentials else f"127.0.0.1:{self.listen_port}"
        )
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def freeze(self) -> None:
        self._to_broker.clear()
        self._to_client.clear()

    def thaw(self) -> None:
        self._trap = None
        self._to_broker.set()
        self._to_client.set()

    def hold_replies_after(self, marker: bytes) -> None:
        """Once the client sends `marker` (it goes on to the broker), hold everything the broker
        sends the client, until `thaw()`: a request answered whose answer does not arrive."""
        self._trap = marker

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection(self.host, self.port)
        self._writers += [client_writer, broker_writer]
        pumps = (
            (client_reader, broker_writer, self._to_broker),
            (broker_reader, client_writer, self._to_client),
        )
        for source, sink, flowing in pumps:
            task = asyncio.create_task(self._pump(source, sink, flowing, watch=flowing is self._to_broker))
            self._tasks.add(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, flowing: asyncio.Event, *, watch: bool
    ) -> None:
        tail = b""  # the end of the last chunk: a marker may straddle two
        with contextlib.suppress(ConnectionError):
            while True:
                await flowing.wait()  # frozen: read nothing, so the sender's socket fills
                data = await source.read(65536)
                if not data:
                    break
                if watch and self._trap is not None and self._trap in tail + data:
                    self._to_client.clear()
                    self.trapped.set()
                tail = data[-64:]
                await flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.close()


class ThreadedProxy:
    """A `TcpProxy` on a thread and event loop of its own: `with ThreadedProxy(host, port) as
    proxy:`, then `proxy.call(proxy.inner.freeze)` and so on, from blocking code."""

    def __init__(self, host: str, port: int) -> None:
        self.inner = TcpProxy(host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    def call(self, function: Callable[[], object]) -> None:
        """Runs `function` on the proxy's loop, and waits for it."""
        done = concurrent.futures.Future[None]()

        def run() -> None:
            try:
                function()
                done.set_result(None)
            except BaseException as exc:  # handed to the caller
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        done.result(timeout=10)

    @property
    def trapped(self) -> bool:
        return self.inner.trapped.is_set()

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.inner.__aenter__(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.inner.__aexit__(None, None, None), self._loop).result(
            timeout=30
        )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
