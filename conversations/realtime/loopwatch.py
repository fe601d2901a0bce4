"""Where the event loop goes: a lag monitor for one process's asyncio loop, Django-free.

A call's WebRTC transport lives on the event loop (ICE consent, DTLS, SCTP, RTP pacing): when
the loop stalls, every call in the process stalls with it. ``LoopWatch`` measures stalls the
way a call feels them and says what ran:

- a ticker task on the loop wakes every ``tick_s`` and stamps the time;
- a watcher *thread* looks at the stamp; once the loop has not ticked for ``threshold_s`` it
  takes one snapshot of the loop thread's Python stack (``sys._current_frames``), which is
  what was running (or waiting for the GIL) during the stall;
- when the loop ticks again the stall's length is known: it is logged (over ``threshold_s``)
  with that stack and kept in the figures ``stats()`` returns (``/healthz`` shows them).

One watch per process (``start_loop_watch``); cheap: a 20 ms tick and a thread that sleeps.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: a stall longer than this is logged, with what ran
STALL_THRESHOLD_S = 0.05
TICK_S = 0.02
#: the window of ``recent_max_ms``
RECENT_WINDOW_S = 60.0
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Stall:
    at: float  # time.time() when it ended
    ms: float
    where: str


@dataclass
class _State:
    last_tick: float = field(default_factory=time.monotonic)
    snapshot: str = ""
    snapshot_for: float = -1.0  # the last_tick the snapshot belongs to


def describe_stack(frame: Any, limit: int = 6) -> str:
    """The innermost frames of a stack, ours first named: ``file:line func <- ...``."""
    entries = traceback.extract_stack(frame)[-limit * 3:]
    parts = []
    for entry in reversed(entries):
        path = entry.filename
        if path.startswith(_PROJECT_ROOT):
            path = os.path.relpath(path, _PROJECT_ROOT)
        else:
            path = "/".join(path.split(os.sep)[-2:])
        parts.append(f"{path}:{entry.lineno} {entry.name}")
        if len(parts) >= limit:
            break
    return " <- ".join(parts)


class LoopWatch:
    def __init__(self, *, threshold_s: float = STALL_THRESHOLD_S, tick_s: float = TICK_S,
                 name: str = "") -> None:
        self.threshold_s = threshold_s
        self.tick_s = tick_s
        self.name = name or f"pid {os.getpid()}"
        self.stalls: deque[Stall] = deque(maxlen=200)
        self.longest: Stall | None = None
        self.stall_count = 0
        self.ticks = 0
        self.started_at = time.time()
        self._state = _State()
        self._loop_thread: int | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start on the running loop (or ``loop``, from its own thread)."""
        loop = loop or asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._state.last_tick = time.monotonic()
        self._task = loop.create_task(self._tick(), name="loopwatch")
        self._thread = threading.Thread(target=self._watch, name="loopwatch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        from .processors import cancel_and_wait

        self._stop.set()
        if self._task is not None:
            await cancel_and_wait([self._task])
        if self._thread is not None:
            self._thread.join(timeout=1)

    # ------------------------------------------------------------------ the two sides
    async def _tick(self) -> None:
        state = self._state
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            gap = now - state.last_tick - self.tick_s
            if gap >= self.threshold_s:
                where = state.snapshot if state.snapshot_for == state.last_tick else "(not sampled)"
                self._record(gap, where)
            state.last_tick = now
            self.ticks += 1

    def _watch(self) -> None:
        state = self._state
        poll = max(0.005, self.threshold_s / 3)
        while not self._stop.wait(poll):
            last = state.last_tick
            if state.snapshot_for == last:
                continue
            if time.monotonic() - last - self.tick_s >= self.threshold_s:
                frame = sys._current_frames().get(self._loop_thread or 0)
                state.snapshot = describe_stack(frame) if frame is not None else "(no frame)"
                state.snapshot_for = last

    def _record(self, gap_s: float, where: str) -> None:
        stall = Stall(at=time.time(), ms=round(1000 * gap_s, 1), where=where)
        self.stalls.append(stall)
        self.stall_count += 1
        if self.longest is None or stall.ms > self.longest.ms:
            self.longest = stall
        level = logging.WARNING if gap_s >= 4 * self.threshold_s else logging.INFO
        logger.log(level, "event loop stalled %.0f ms (%s) in %s", stall.ms, self.name, where)

    # ------------------------------------------------------------------ figures
    def stats(self) -> dict[str, Any]:
        now = time.time()
        recent = [s.ms for s in self.stalls if now - s.at <= RECENT_WINDOW_S]
        return {
            "threshold_ms": round(1000 * self.threshold_s),
            "stalls": self.stall_count,
            "longest_ms": self.longest.ms if self.longest else 0.0,
            "longest_where": self.longest.where if self.longest else "",
            "recent_max_ms": max(recent) if recent else 0.0,
            "since_last_tick_ms": round(1000 * max(0.0, time.monotonic() - self._state.last_tick - self.tick_s), 1),
            "uptime_s": round(now - self.started_at, 1),
        }

    def reset(self) -> None:
        """Forget the figures so far (benchmarks and tests measure one stretch)."""
        self.stalls.clear()
        self.longest = None
        self.stall_count = 0


_WATCH: LoopWatch | None = None


def start_loop_watch(**kwargs: Any) -> LoopWatch:
    """The process's watch, started on the running loop the first time."""
    global _WATCH
    if _WATCH is None:
        _WATCH = LoopWatch(**kwargs)
        _WATCH.start()
    return _WATCH


def loop_watch() -> LoopWatch | None:
    return _WATCH
