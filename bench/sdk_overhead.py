"""Per-task overhead of the SDK over the bare function, with the local reporter.

    .venv/bin/python bench/sdk_overhead.py [--tasks 2000] [--repeat 5]

Prints medians: sequential task calls, `.submit()`, `.map()`, a no-op flow's wall time, and
`import baton` (fresh subprocesses). Console lines are formatted but written to /dev/null, so
terminal speed is not measured; `quiet` rows have the console at WARNING.
Targets: <= 0.3 ms per sequential task, `import baton` <= 150 ms.
`--traces` turns OpenTelemetry traces on (a span per flow and task run, exported over OTLP to
a sink on a local port that answers 200): run with and without to see what tracing costs.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from baton import _runtime, _tracing, flow, task
from baton._reporting import LocalReporter
from baton._settings import ClientSettings


def noop(x: int) -> int:
    return x


noop_task = task(noop)


def median_of(repeat: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeat))


def bare(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        noop(i)
    return time.perf_counter() - started


def sequential(n: int) -> float:
    @flow
    def run() -> float:
        started = time.perf_counter()
        for i in range(n):
            noop_task(i)
        return time.perf_counter() - started

    return run()


def submitted(n: int) -> float:
    @flow
    def run() -> float:
        started = time.perf_counter()
        futures = [noop_task.submit(i) for i in range(n)]
        for future in futures:
            future.result()
        return time.perf_counter() - started

    return run()


def mapped(n: int) -> float:
    @flow
    def run() -> float:
        started = time.perf_counter()
        noop_task.map(range(n)).result()
        return time.perf_counter() - started

    return run()


def noop_flow() -> float:
    @flow
    def empty() -> None:
        pass

    started = time.perf_counter()
    empty()
    return time.perf_counter() - started


def _time_of(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_time(repeat: int, code: str = "import baton") -> float:
    """Median wall time of `python -c code` minus that of `python -c pass`."""
    python_alone = statistics.median(_time_of([sys.executable, "-c", "pass"]) for _ in range(repeat))
    return statistics.median(_time_of([sys.executable, "-c", code]) for _ in range(repeat)) - python_alone


def otlp_sink() -> str:
    """An HTTP server on a thread that takes OTLP exports and drops them; its base URL."""

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--traces", action="store_true", help="with OpenTelemetry traces on")
    args = parser.parse_args()
    n, repeat = args.tasks, args.repeat
    if args.traces:
        os.environ["BATON_OTEL_ENDPOINT"] = otlp_sink()
        assert _tracing.setup("bench"), "traces need the otel extra: pip install 'baton[otel]'"

    home = tempfile.mkdtemp(prefix="baton-bench-")
    settings = ClientSettings(results_dir=f"{home}/results")
    _runtime.configure(settings=settings, reporter=LocalReporter())
    console = logging.getLogger("baton").handlers[0]
    assert isinstance(console, logging.StreamHandler)
    console.setStream(open(os.devnull, "w"))

    bare_s = median_of(repeat, lambda: bare(n))
    rows: list[tuple[str, float]] = []
    for label, level in (("", logging.INFO), (" quiet", logging.WARNING)):
        logging.getLogger("baton").setLevel(level)
        sequential(50), submitted(50), mapped(50)  # warm up threads and caches
        rows.append((f"sequential{label}", (median_of(repeat, lambda: sequential(n)) - bare_s) / n))
        rows.append((f"submit{label}", (median_of(repeat, lambda: submitted(n)) - bare_s) / n))
        rows.append((f"map{label}", (median_of(repeat, lambda: mapped(n)) - bare_s) / n))
    logging.getLogger("baton").setLevel(logging.INFO)
    flow_s = median_of(max(repeat, 21), noop_flow)

    traces = "traces on" if _tracing.enabled() else "traces off"
    print(f"baton SDK overhead, local reporter, {traces}, {n} tasks, median of {repeat} runs")
    print(f"  bare function call            {bare_s / n * 1e6:9.2f} us")
    for label, seconds in rows:
        print(f"  per task, {label:<19} {seconds * 1e3:9.3f} ms")
    print(f"  no-op flow wall time          {flow_s * 1e3:9.3f} ms")
    imports = max(repeat, 7)
    print(f"  import baton                  {import_time(imports) * 1e3:9.1f} ms (over bare python)")
    code = "from baton import flow, task"
    print(f"  from baton import flow, task  {import_time(imports, code) * 1e3:9.1f} ms")
    code = "from baton import flow\n@flow\ndef f(): pass\nf()"
    print(f"  import + first no-op flow     {import_time(imports, code) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
