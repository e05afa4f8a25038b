"""CPU seconds used by the processes of a benchmark: ours, the server's, PostgreSQL's, RabbitMQ's.

On a shared 2-core machine throughput is a fight for cores; CPU per operation says where each
operation's cost goes, and varies far less from run to run than rates do.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # exited in between
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / _TICKS


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


@dataclass(frozen=True)
class CpuSample:
    wall: float
    seconds: dict[str, float]


class CpuMeter:
    """`sample()` before and after; `per_op(before, after, n)` prints ms of CPU per operation."""

    def __init__(self, *server_pids: int) -> None:
        self._server_pids = list(server_pids)

    def sample(self) -> CpuSample:
        me = resource.getrusage(resource.RUSAGE_SELF)
        seconds = {
            "bench client": me.ru_utime + me.ru_stime,
            "postgres": _process_seconds(_pids("postgres")),
            "rabbitmq": _process_seconds(_pids("beam.smp")),
        }
        if self._server_pids:
            seconds = {"server": _process_seconds(self._server_pids), **seconds}
        return CpuSample(time.perf_counter(), seconds)

    @staticmethod
    def per_op(before: CpuSample, after: CpuSample, operations: int) -> str:
        parts = [
            f"{name} {1000 * (after.seconds[name] - before.seconds[name]) / operations:.3f}"
            for name in before.seconds
        ]
        total = sum(after.seconds[n] - before.seconds[n] for n in before.seconds)
        return f"CPU ms per op: {', '.join(parts)}; all {1000 * total / operations:.3f}"
