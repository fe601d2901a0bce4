"""Perception benchmark (``manage.py bench_perception``): the embedded engine behind a
``PerceptionMonitor`` at its default sampling, fed a 640×480 camera at 15 fps in real time.

The camera plays the scripted call of ``synthetic.py`` in a loop (present, looking away,
absent, two people) while the conversation cycles through 4 s of the user speaking, 4 s of
the replica speaking and 2 s of quiet, so the adaptive sampling runs as in a call.

Figures:

- ``ms_per_frame``: wall time of one frame's analysis in the engine thread (p50/p95/max;
  it grows with other load on the machine); ``cpu_ms_per_frame`` that thread's own CPU
  time (MediaPipe runs its graph in threads of its own, so this is only a part), and
  ``process_cpu_ms_per_frame`` all the CPU the process spent per analysed frame (the
  feeding loop's share taken off): the cost of a frame whatever else runs;
- ``analysed_fps``: frames analysed per second of the run;
- ``cpu_share``: CPU time the process spent on perception per second of the run, as a
  share of one core (the feeding loop's own cost, measured first, is taken off);
- ``by_scene``: frames and median ms per scene (two faces cost two landmark passes; an
  empty frame adds the person segmentation).
"""
from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from bench.perception_scene import SCRIPT, SCRIPT_END_S, jitter, scene_at, scene_frame
from conversations.realtime.perception.engine import FrameReading, MediaPipePerception, PerceptionStream, get_engine
from conversations.realtime.perception.monitor import PerceptionMonitor
from conversations.realtime.perception.options import SamplingPolicy

#: conversation phases the benchmark cycles through: (who speaks, seconds)
PHASES: tuple[tuple[str, float], ...] = (("user", 4.0), ("replica", 4.0), ("idle", 2.0))
JITTER_VARIANTS = 8


class _RecordingEngine:
    """Wraps the engine to record each frame's cost (and which scene it showed)."""

    def __init__(self, engine: MediaPipePerception) -> None:
        self.engine = engine
        self.scene_of: dict[int, str] = {}
        self.records: list[tuple[str, float, float]] = []  # (scene, wall ms, cpu ms)

    def stream(self, **kwargs: float) -> PerceptionStream:
        return PerceptionStream(self, **kwargs)  # type: ignore[arg-type]

    async def read_async(self, frame: np.ndarray) -> FrameReading:
        reading = await self.engine.read_async(frame)
        self.records.append((self.scene_of.get(id(frame), "?"), reading.elapsed_ms, reading.cpu_ms))
        return reading


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


async def run_perception_bench(seconds: float = 60.0, *, camera_fps: float = 15.0,
                               sampling: SamplingPolicy | None = None,
                               engine: MediaPipePerception | None = None) -> dict[str, Any]:
    engine = engine or get_engine()
    sampling = sampling or SamplingPolicy()
    scenes = sorted({scene for _, scene in SCRIPT})
    variants = {s: [jitter(scene_frame(s), i / camera_fps) for i in range(JITTER_VARIANTS)] for s in scenes}
    await engine.read_async(variants["present"][0])  # load the models outside the measurement

    recorder = _RecordingEngine(engine)
    for scene, frames in variants.items():
        for f in frames:
            recorder.scene_of[id(f)] = scene
    monitor = PerceptionMonitor({"perception_model": "mediapipe"}, emit=lambda *a: None, engine=recorder,
                                sampling=sampling)
    period = 1.0 / camera_fps
    cycle = sum(d for _, d in PHASES)

    async def feed(duration: float, offer: bool) -> None:
        start = time.monotonic()
        n = 0
        while True:
            now = time.monotonic()
            elapsed = now - start
            if elapsed >= duration:
                return
            if offer:
                phase_t = elapsed % cycle
                acc = 0.0
                for who, d in PHASES:
                    acc += d
                    if phase_t < acc:
                        break
                monitor.set_user_speaking(who == "user")
                monitor.set_replica_speaking(who == "replica")
                scene = scene_at(elapsed % SCRIPT_END_S)
                monitor.offer_frame(variants[scene][n % JITTER_VARIANTS], 1000.0 * now)
            n += 1
            await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))

    # the feeding loop alone, to take its cost off
    loop_s = min(3.0, max(1.0, seconds / 10))
    c0, w0 = time.process_time(), time.monotonic()
    await feed(loop_s, offer=False)
    loop_share = (time.process_time() - c0) / (time.monotonic() - w0)

    c0, w0 = time.process_time(), time.monotonic()
    try:
        await feed(seconds, offer=True)
        await monitor.drain(timeout=30)
    finally:
        wall = time.monotonic() - w0
        cpu = time.process_time() - c0
        stats = monitor.stats
        await monitor.close()

    wall_ms = [w for _, w, _ in recorder.records]
    cpu_ms = [c for _, _, c in recorder.records]
    by_scene = {}
    for scene in scenes:
        ms = [w for s, w, _ in recorder.records if s == scene]
        if ms:
            by_scene[scene] = {"frames": len(ms), "ms_p50": round(statistics.median(ms), 2)}
    return {
        "seconds": round(wall, 2),
        "camera_fps": camera_fps,
        "frame_size": [int(variants["present"][0].shape[1]), int(variants["present"][0].shape[0])],
        "sampling": asdict(sampling),
        "ms_per_frame": {"p50": _pct(wall_ms, 0.5), "p95": _pct(wall_ms, 0.95), "max": _pct(wall_ms, 1.0)},
        "cpu_ms_per_frame": {"p50": _pct(cpu_ms, 0.5), "p95": _pct(cpu_ms, 0.95)},
        "process_cpu_ms_per_frame": (round(1000.0 * max(0.0, cpu - loop_share * wall) / len(recorder.records), 2)
                                     if recorder.records else None),
        "analysed_fps": round(len(recorder.records) / wall, 3) if wall > 0 else 0.0,
        "cpu_share": round(max(0.0, cpu / wall - loop_share), 4) if wall > 0 else 0.0,
        "cpu_share_with_feeding_loop": round(cpu / wall, 4) if wall > 0 else 0.0,
        "feeding_loop_cpu_share": round(loop_share, 4),
        "frames": stats,
        "by_scene": by_scene,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
    }
