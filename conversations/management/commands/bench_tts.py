"""The embedded voices side by side: time to the first audio of a short first phrase (what
decides how soon the agent starts talking) and the real-time factor on whole sentences."""
from __future__ import annotations

import asyncio
import json
import os
import time

from django.core.management.base import BaseCommand

from bench.live import stats, write_json

FIRST_PHRASES = ["Sure,", "Well, I think", "The capital is Paris.", "Good question!", "Of course,",
                 "Let me see,", "That sounds great.", "Hello there!"]
SENTENCES = ["The capital of France is Paris, a lovely city on the river Seine.",
             "A spider has eight legs, and most of them have eight eyes as well.",
             "You could try a warm bath and a dark, quiet room an hour before you go to bed.",
             "Electric cars are quiet and cheap to run, but charging them still takes a while."]


class Command(BaseCommand):
    help = "First-audio latency and real-time factor of the embedded TTS engines (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--engines", default="espeak-ng,piper")
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, engines, rounds, json_path, **options):
        from conversations.realtime.engines import registry
        from conversations.realtime.engines.base import VoiceOptions

        load0 = os.getloadavg()[0]
        results = {}
        for name in [e.strip() for e in engines.split(",") if e.strip()]:
            tts = registry.get_tts(name)
            voice = VoiceOptions()
            tts.synthesize_blocking("Warm up.", voice=voice)

            async def first_audio(text: str) -> float:
                t0 = time.perf_counter()
                async for _chunk in tts.synthesize(text, voice=voice):
                    return 1000.0 * (time.perf_counter() - t0)
                return float("nan")

            firsts = [asyncio.run(first_audio(t)) for _ in range(rounds) for t in FIRST_PHRASES]
            rtfs = []
            for _ in range(rounds):
                for text in SENTENCES:
                    t0 = time.perf_counter()
                    chunks = tts.synthesize_blocking(text, voice=voice)
                    spent = time.perf_counter() - t0
                    rtfs.append(1000.0 * spent / (sum(c.duration_ms for c in chunks) / 1000.0))
            # the real-time factor as ms of synthesis per second of audio (RTF 0.1 = 100)
            results[name] = {"first_audio_ms": stats(firsts), "synthesis_ms_per_audio_s": stats(rtfs)}
            self.stdout.write(f"{name}: first audio of a short phrase p50 {results[name]['first_audio_ms']['p50']} ms "
                              f"(p95 {results[name]['first_audio_ms']['p95']}), RTF p50 "
                              f"{results[name]['synthesis_ms_per_audio_s']['p50'] / 1000:.3f}")
        data = {"engines": results, "load_avg": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}}
        self.stdout.write(json.dumps(data, indent=2))
        write_json(json_path, data)
