"""The realtime pipeline's latency, engines only (no transport): eSpeak NG speech through the
full pipeline in real time with the stock PAL (or ``--pal``), per-stage and overall figures."""
from __future__ import annotations

import asyncio
import json

from django.core.management.base import BaseCommand, CommandError

from conversations.benchmarks import load_utterances, write_json


class Command(BaseCommand):
    help = "Utterance-to-utterance latency through the realtime pipeline (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=10)
        parser.add_argument("--utterances", help="file with one sentence per line")
        parser.add_argument("--pal", default="pstock000001", help="PAL id (default: the stock PAL)")
        parser.add_argument("--json", dest="json_path", help="write the figures here")

    def handle(self, *args, turns, utterances, pal, json_path, **options):
        from conversations.realtime.bench import run_pipeline_bench
        from conversations.realtime.config import PipelineConfig
        from conversations.session import build_engines
        from pals.models import Pal
        from pals.services import pal_representation

        if turns < 1:
            raise CommandError("--turns must be at least 1")
        try:
            texts = load_utterances(utterances) if utterances else None
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        pal_obj = Pal.objects.filter(pk=pal).first()
        if pal_obj is None:
            raise CommandError(f"no PAL {pal!r}")
        snap = pal_representation(pal_obj, mask=False)
        config = PipelineConfig.from_layers(snap["system_prompt"], snap["context"], snap["layers"],
                                            pipeline_mode=snap["pipeline_mode"])
        engines = build_engines(config)
        self.stdout.write(f"{turns} turns through the pipeline of {pal_obj} (real time)…")
        data = asyncio.run(run_pipeline_bench(engines, config, turns=turns, utterances=texts))
        summary = {k: v for k, v in data.items() if k != "per_turn"}
        self.stdout.write(json.dumps(summary, indent=2))
        write_json(json_path, data)
