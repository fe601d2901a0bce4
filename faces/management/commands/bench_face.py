"""Render a spoken reply in real time and measure the renderer and the video encoder."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from bench.live import write_json


class Command(BaseCommand):
    help = "Face renderer cost per 512×512 frame at 25 fps, with H.264 or VP8 encoding (prints, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--face", default="rstock000001")
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8",
                            help="the call's encoder to time (aiortc's; browsers negotiate VP8 first)")
        parser.add_argument("--greenscreen", action="store_true")
        parser.add_argument("--record", action="store_true",
                            help="also record (enable_recording): time the recorder's H.264 + AAC encoding")
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, face, seconds, codec, greenscreen, record, json_path, **options):
        from bench.face import bench_render
        from faces.models import Face
        from faces.paths import face_assets_dir
        from faces.training import load_assets

        obj = Face.objects.filter(pk=face).first()
        if obj is None or obj.status != Face.Status.READY:
            raise CommandError(f"face {face!r} is not ready (run `manage.py setup_opencvi` for the stock face)")
        data = {"face": face, **bench_render(load_assets(face_assets_dir(obj)), seconds, codec=codec,
                                             realtime=True, greenscreen=greenscreen, record=record)}
        self.stdout.write(json.dumps(data, indent=2))
        write_json(json_path, data)
