"""Drive a ``ConversationPipeline`` the way a transport does, for tests and benchmarks.

Every tick (20 ms of *pipeline time*) the driver pushes 20 ms of mic audio and pulls 20 ms
of reply audio, like an aiortc track pair sharing one clock. ``speed`` sets the pacing:

- ``speed=1.0``: real time (ticks on an absolute schedule, so the pipeline's engines,
  running in threads, take their real share of pipeline time): honest latency figures.
- ``speed=0``: as fast as possible, for logic tests with instant fake engines; pass a
  :class:`~.clock.ManualClock` (the pipeline's) and it is advanced 20 ms per tick, so the
  pipeline's latencies are in the same virtual time.

Everything is recorded on the tick timeline: output audio, and each event with the tick at
which it was emitted (``events``: ``(t_ms, event)``, the event as the protocol sends it).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conversations.realtime.clock import Clock, ManualClock
from conversations.realtime.protocol import to_wire


@dataclass
class Recording:
    out: list[np.ndarray] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.out) if self.out else np.zeros(0, np.int16)

    def of_type(self, event_type: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e["event_type"] == event_type]

    def first(self, event_type: str, after_ms: float = -1.0,
              where: Callable[[dict[str, Any]], bool] | None = None) -> tuple[float, dict[str, Any]] | None:
        for t, e in self.events:
            if e["event_type"] == event_type and t > after_ms and (where is None or where(e)):
                return t, e
        return None


class RealtimeDriver:
    def __init__(self, pipeline: Any, *, speed: float = 1.0, tick_ms: int = 20,
                 in_rate: int = 16_000, clock: Clock | None = None, yields_per_tick: int = 8) -> None:
        self.pipeline = pipeline
        self.speed = speed
        self.tick_ms = tick_ms
        self.in_rate = in_rate
        self.clock = clock
        self.yields_per_tick = yields_per_tick
        self.rec = Recording()
        self.ticks = 0
        self._t0: float | None = None
        self._seen = 0
        self._in_tick = in_rate * tick_ms // 1000
        self._out_tick = pipeline.output_sample_rate * tick_ms // 1000

    @property
    def t_ms(self) -> float:
        """Pipeline time: ticks so far × tick length."""
        return self.ticks * self.tick_ms

    async def tick(self, mic: np.ndarray | None = None) -> np.ndarray:
        """One tick: push ``mic`` (``in_tick`` samples, silence if None), pull the output."""
        if mic is None:
            mic = np.zeros(self._in_tick, np.float32)
        if isinstance(self.clock, ManualClock):
            self.clock.advance(self.tick_ms / 1000.0)
        self.pipeline.push_audio(mic, self.in_rate)
        out = self.pipeline.read_audio(self._out_tick)
        self.rec.out.append(out)
        self.ticks += 1
        await self._pace()
        self._collect_events()
        return out

    async def _pace(self) -> None:
        if self.speed > 0:
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + self.ticks * self.tick_ms / 1000.0 / self.speed
            delay = due - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        else:
            for _ in range(self.yields_per_tick):
                await asyncio.sleep(0)

    def _collect_events(self) -> None:
        log = self.pipeline.events.log
        # the log may have been trimmed at its front; seq tells what is new
        for e in log:
            if e.seq > self._seen:
                self.rec.events.append((self.t_ms, to_wire(e, self.pipeline.conversation_id)))
                self._seen = e.seq

    async def play(self, audio: np.ndarray, *, on_tick: Callable[[float], None] | None = None) -> None:
        """Push ``audio`` (float32 at ``in_rate``) tick by tick, pulling output meanwhile."""
        n = self._in_tick
        audio = np.asarray(audio, np.float32)
        for i in range(0, len(audio), n):
            piece = audio[i:i + n]
            if len(piece) < n:
                piece = np.concatenate([piece, np.zeros(n - len(piece), np.float32)])
            await self.tick(piece)
            if on_tick is not None:
                on_tick(self.t_ms)

    async def silence(self, ms: float) -> None:
        for _ in range(int(round(ms / self.tick_ms))):
            await self.tick()

    async def run_until(self, predicate: Callable[[], bool], *, timeout_ms: float) -> bool:
        """Tick with a silent mic until ``predicate()`` holds or ``timeout_ms`` of pipeline
        time pass. Returns whether it held."""
        end = self.t_ms + timeout_ms
        while self.t_ms < end:
            if predicate():
                return True
            await self.tick()
        return predicate()

    async def wait_event(self, event_type: str, *, timeout_ms: float, after_ms: float = -1.0,
                         where: Callable[[dict[str, Any]], bool] | None = None
                         ) -> tuple[float, dict[str, Any]] | None:
        await self.run_until(lambda: self.rec.first(event_type, after_ms, where) is not None,
                             timeout_ms=timeout_ms)
        return self.rec.first(event_type, after_ms, where)
