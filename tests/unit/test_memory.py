"""The server gives memory back after a burst (glibc's malloc_trim)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from baton_server.memory import can_trim, should_trim

MB = 2**20


def test_trims_only_well_above_the_floor_and_only_after_new_allocations() -> None:
    assert not should_trim(80 * MB, floor=70 * MB, after_last_trim=None, growth=16 * MB)
    assert should_trim(90 * MB, floor=70 * MB, after_last_trim=None, growth=16 * MB)
    # the last trim left 100 MB of live objects: nothing new since, nothing to give back
    assert not should_trim(100 * MB, floor=70 * MB, after_last_trim=100 * MB, growth=16 * MB)
    assert should_trim(104 * MB, floor=70 * MB, after_last_trim=100 * MB, growth=16 * MB)


# A burst in a fresh interpreter: 200 MB of 1 KB buffers (malloc's heap, not pymalloc's
# arenas), every 64th kept, so the heap cannot shrink from its top by itself.
_BURST = textwrap.dedent(
    """
    import asyncio
    from baton_server.memory import MemoryReleaser, rss_bytes

    async def main():
        releaser = MemoryReleaser(interval=0.05, growth_mb=16)
        releaser.start()
        burst = [bytearray(1024) for _ in range(200_000)]
        kept = burst[::64]
        del burst
        before = rss_bytes()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if releaser.trims and rss_bytes() < before - 100 * 2**20:
                break
        await releaser.stop()
        print(before // 2**20, rss_bytes() // 2**20, releaser.trims, len(kept))

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not can_trim(), reason="malloc_trim is glibc's; elsewhere the releaser does nothing")
def test_a_burst_of_freed_memory_goes_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BURST], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, trims, _ = map(int, out.stdout.split())
    assert trims >= 1
    assert before - after > 100, f"RSS {before} MB -> {after} MB"
