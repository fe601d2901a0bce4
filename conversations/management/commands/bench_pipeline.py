"""The realtime pipeline's latency and hearing, engines only (no transport): eSpeak NG speech
through the pipeline a live call of the PAL gets, in real time; per-stage and overall figures
and the word error rate of what it heard."""
from __future__ import annotations

import asyncio
import json
import os

from django.core.management.base import BaseCommand, CommandError

from bench.live import live_session_config, load_utterances, write_json


class Command(BaseCommand):
    help = "Utterance-to-utterance latency and word error through the realtime pipeline (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=10)
        parser.add_argument("--utterances", help="file with one sentence per line")
        parser.add_argument("--voice", action="append", dest="voices",
                            help="eSpeak NG voice to speak with (repeat for several; default: four English voices)")
        parser.add_argument("--pal", default="pstock000001", help="PAL id (default: the stock PAL)")
        parser.add_argument("--language", default="english", help="the conversation's language property")
        parser.add_argument("--json", dest="json_path", help="write the figures here")

    def handle(self, *args, turns, utterances, voices, pal, language, json_path, **options):
        from bench.pipeline import DEFAULT_VOICES, run_pipeline_bench
        from conversations.live.config import pipeline_for
        from conversations.realtime.engines import registry
        from conversations.realtime.frontdoor import build_engines
        from cvi_site.llmservice import llm_service_as_served

        if turns < 1:
            raise CommandError("--turns must be at least 1")
        try:
            texts = load_utterances(utterances) if utterances else None
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        try:
            config = live_session_config(pal_id=pal, language=language)
        except Exception as exc:  # noqa: BLE001 - ApplicationError / ValidationError: say why
            raise CommandError(f"cannot start a conversation with PAL {pal!r}: {exc}") from None
        with llm_service_as_served() as llm_url:
            engines = build_engines(config.pipeline)
            speaker = registry.get_tts("espeak-ng")
            self.stdout.write(f"{turns} turns through the live pipeline of PAL {pal} (real time; STT "
                              f"{engines.stt.name}, end of turn {getattr(engines.turn, 'name', 'transcript only')}, "
                              f"LLM {engines.llm.name} {'via ' + llm_url if llm_url else 'in process'})…")
            load0 = os.getloadavg()[0]

            def show(turn: dict) -> None:
                self.stdout.write(f"  {turn['u2u_ms']} ms  heard {turn['heard']!r}  ->  {turn.get('reply')!r}")

            async def run() -> dict:
                pipe = pipeline_for(config, engines)
                try:
                    return await run_pipeline_bench(pipe, speaker, turns=turns, utterances=texts,
                                                    voices=voices or DEFAULT_VOICES, on_turn=show)
                finally:
                    await engines.llm.aclose()  # the service client's connections (no-op in process)

            data = asyncio.run(run())
        data["load_avg"] = {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}
        data["engines"] = {"stt": engines.stt.name, "turn": getattr(engines.turn, "name", None),
                           "llm": engines.llm.name, "tts": engines.tts.name}
        summary = {k: v for k, v in data.items() if k != "per_turn"}
        self.stdout.write(json.dumps(summary, indent=2))
        write_json(json_path, data)
