"""How well the end of a turn is judged: complete sentences should be answered after the
shortest wait, sentences cut off mid-thought (then finished after a pause) should stay one
turn. eSpeak NG speech through the pipeline a live call of the PAL gets, in real time."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bench.live import live_session_config, write_json

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "bench_data" / "turn_end_cases.txt"


class Command(BaseCommand):
    help = "End-of-turn accuracy and decision time (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--cases", default=str(DEFAULT_CASES),
                            help="C<TAB>sentence / I<TAB>fragment | rest lines (default: the built-in set)")
        parser.add_argument("--pal", default="pstock000001")
        parser.add_argument("--language", default="english")
        parser.add_argument("--voice", action="append", dest="voices", help="eSpeak NG voice (repeatable)")
        parser.add_argument("--pause-ms", type=float, default=700.0, help="pause inside a cut-off sentence")
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, cases, pal, language, voices, pause_ms, json_path, **options):
        from bench.pipeline import DEFAULT_VOICES, parse_turn_cases, run_turn_end_bench
        from conversations.live.config import pipeline_for
        from conversations.realtime.engines import registry
        from conversations.realtime.frontdoor import build_engines
        from cvi_site.llmservice import llm_service_as_served

        try:
            parsed = parse_turn_cases(Path(cases).read_text().splitlines())
        except (OSError, ValueError) as exc:
            raise CommandError(f"{cases}: {exc}") from None
        if not parsed:
            raise CommandError(f"{cases} has no cases")
        try:
            config = live_session_config(pal_id=pal, language=language)
        except Exception as exc:  # noqa: BLE001 - ApplicationError / ValidationError: say why
            raise CommandError(f"cannot start a conversation with PAL {pal!r}: {exc}") from None
        with llm_service_as_served():
            engines = build_engines(config.pipeline)
            speaker = registry.get_tts("espeak-ng")
            load0 = os.getloadavg()[0]

            def show(row: dict) -> None:
                mark = "ok " if row["correct"] else "BAD"
                self.stdout.write(f"  {mark} {row['kind']} {row['judgement'] or '-':10} P={row['turn_p']} "
                                  f"{row['decide_ms']} ms  {row['text']!r} -> {row['heard']}")

            async def run() -> dict:
                pipe = pipeline_for(config, engines)
                try:
                    return await run_turn_end_bench(pipe, speaker, parsed, voices=voices or DEFAULT_VOICES,
                                                    pause_ms=pause_ms, on_case=show)
                finally:
                    await engines.llm.aclose()

            data = asyncio.run(run())
        data["load_avg"] = {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}
        data["turn_waits"] = dataclasses.asdict(config.pipeline.flow.waits)  # the PAL's level, as waits
        data["turn_detection"] = getattr(engines.turn, "name", None) or "transcript only"
        self.stdout.write(json.dumps({k: v for k, v in data.items() if k != "per_case"}, indent=2))
        write_json(json_path, data)
