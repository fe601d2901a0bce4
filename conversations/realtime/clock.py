"""Injected time, so tests and benchmarks can drive the pipeline's notion of "now".

The pipeline reads time only through a :class:`Clock`: ``monotonic()`` for latencies and
timers, ``time()`` for the ``timestamp`` of protocol events. Audio itself carries its own
time (samples pushed / pulled), which is what turn-taking and playout accounting use.
"""
from __future__ import annotations

import time as _time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale (latencies, timers)."""

    def time(self) -> float:
        """Seconds since the epoch (event timestamps)."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()


class ManualClock:
    """A clock that only moves when told to (``advance``); for deterministic tests."""

    def __init__(self, start: float = 1000.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch_offset = epoch - start

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._epoch_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
