"""Perception cost at the default sampling: the embedded engine behind a PerceptionMonitor, fed a
640×480 camera at 15 fps in real time (the stock portrait's scripted call, looped)."""
from __future__ import annotations

import asyncio
import json

from django.core.management.base import BaseCommand, CommandError

from bench.live import write_json

GOAL_MS = 12.0
GOAL_CPU_SHARE = 0.10


class Command(BaseCommand):
    help = "Embedded perception: ms per 640×480 frame, analysed fps and CPU share (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=60.0, help="length of the run (real time)")
        parser.add_argument("--camera-fps", type=float, default=15.0, help="frames the camera offers per second")
        parser.add_argument("--json", dest="json_path", help="write the figures here")

    def handle(self, *args, seconds, camera_fps, json_path, **options):
        from bench.perception import run_perception_bench

        if seconds <= 0 or camera_fps <= 0:
            raise CommandError("--seconds and --camera-fps must be positive")
        self.stdout.write(f"{seconds:g} s of 640×480 camera at {camera_fps:g} fps through the embedded perception…")
        data = asyncio.run(run_perception_bench(seconds, camera_fps=camera_fps))
        self.stdout.write(json.dumps(data, indent=2))
        ms, share = data["ms_per_frame"]["p50"], data["cpu_share"]
        self.stdout.write(f"goal ≤ {GOAL_MS:g} ms per frame: p50 {ms} ms, p95 {data['ms_per_frame']['p95']} ms "
                          f"({'met' if ms is not None and ms <= GOAL_MS else 'NOT met'} at p50)")
        self.stdout.write(f"goal < {100 * GOAL_CPU_SHARE:g}% of one core: {100 * share:.1f}% "
                          f"({'met' if share < GOAL_CPU_SHARE else 'NOT met'}; load average "
                          f"{data['machine']['load_average_1m']} on {data['machine']['cpus']} cores)")
        write_json(json_path, data)
