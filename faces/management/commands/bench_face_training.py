"""Train a face from a generated talking video (60 s by default) and time it."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from bench.live import write_json


class Command(BaseCommand):
    help = "Face training time on a generated talking video (prints, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated video")
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, seconds, json_path, **options):
        from bench.face import bench_training

        data = bench_training(seconds)
        self.stdout.write(json.dumps(data, indent=2))
        write_json(json_path, data)
