"""The event-loop lag monitor: a stall is measured, and it names what ran."""
from __future__ import annotations

import asyncio
import time

from conversations.realtime.loopwatch import LoopWatch


def _block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a blocking call on the loop looks like


def test_a_stall_is_measured_and_names_what_ran() -> None:
    async def main() -> dict:
        watch = LoopWatch(threshold_s=0.05)
        watch.start()
        await asyncio.sleep(0.2)
        _block_the_loop(0.3)
        await asyncio.sleep(0.2)
        await watch.stop()
        return watch.stats()

    stats = asyncio.run(asyncio.wait_for(main(), 30))
    assert stats["stalls"] >= 1
    assert 250 <= stats["longest_ms"] <= 2000
    assert "_block_the_loop" in stats["longest_where"]
    assert "test_loopwatch.py" in stats["longest_where"]


def test_reset_forgets_the_stretch_before() -> None:
    async def main() -> tuple[dict, dict]:
        watch = LoopWatch(threshold_s=0.05)
        watch.start()
        await asyncio.sleep(0.1)
        _block_the_loop(0.2)
        await asyncio.sleep(0.1)
        before = watch.stats()
        watch.reset()
        after = watch.stats()
        await watch.stop()
        return before, after

    before, after = asyncio.run(asyncio.wait_for(main(), 30))
    assert before["stalls"] >= 1 and before["longest_ms"] >= 150
    assert after["stalls"] == 0 and after["longest_ms"] == 0.0
