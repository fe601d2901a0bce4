"""What guardrails cost a call: the same turns through the live pipeline of the stock PAL and of a
copy of it that links a few everyday guardrails, in one run, with the same engines. Prints the
utterance-to-utterance latency of both, their ratio, what each check took and how many yes/no
questions it asked, and which replies were withheld; writes JSON."""
from __future__ import annotations

import asyncio
import json
import os
import statistics

from django.core.management.base import BaseCommand, CommandError

from bench.live import BENCH_ACCOUNT, live_session_config, load_utterances, write_json

#: rules a real deployment would plausibly set (none of them is about what the bench asks)
RULES = [
    {"guardrail_name": "no_medical_advice", "guardrail_prompt": "Never give medical advice or diagnose illnesses."},
    {"guardrail_name": "no_politics", "guardrail_prompt": "Never talk about politics, parties or elections."},
    {"guardrail_name": "no_competitors", "guardrail_prompt": "Never mention or recommend competitor products."},
]


class Command(BaseCommand):
    help = "Latency a PAL's guardrails add to each reply, against the same PAL without them (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=8)
        parser.add_argument("--utterances", help="file with one sentence per line")
        parser.add_argument("--pal", default="pstock000001", help="the PAL to compare with and to copy (default: stock)")
        parser.add_argument("--json", dest="json_path", help="write the figures here")

    def handle(self, *args, turns, utterances, pal, json_path, **options):
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
            guarded = self._guarded_copy(pal)
            configs = {"without": live_session_config(pal_id=pal), "with": live_session_config(pal_id=guarded)}
        except Exception as exc:  # noqa: BLE001 - ApplicationError / ValidationError: say why
            raise CommandError(f"cannot start a conversation with PAL {pal!r}: {exc}") from None
        results: dict[str, dict] = {}
        load0 = os.getloadavg()[0]
        with llm_service_as_served() as llm_url:
            speaker = registry.get_tts("espeak-ng")
            for label, config in configs.items():
                engines = build_engines(config.pipeline)
                self.stdout.write(f"{turns} turns {label} guardrails (LLM {engines.llm.name} "
                                  f"{'via ' + llm_url if llm_url else 'in process'})…")

                def show(turn: dict) -> None:
                    self.stdout.write(f"  {turn['u2u_ms']} ms  heard {turn['heard']!r}  ->  {turn.get('reply')!r}")

                async def run(config=config, engines=engines) -> tuple[dict, list]:
                    pipe = pipeline_for(config, engines)
                    try:
                        data = await run_pipeline_bench(pipe, speaker, turns=turns, utterances=texts,
                                                        voices=DEFAULT_VOICES, on_turn=show)
                        return data, list(pipe.guardrails.verdicts) if pipe.guardrails else []
                    finally:
                        await engines.llm.aclose()

                data, verdicts = asyncio.run(run())
                if verdicts:
                    data["checks"] = {"count": len(verdicts),
                                      "check_ms_p50": round(statistics.median(v.ms for v in verdicts), 1),
                                      "questions_per_check": round(statistics.mean(v.asked for v in verdicts), 2),
                                      "withheld": sum(v.reply_blocked for v in verdicts),
                                      "unanswered": sum(not v.answered for v in verdicts)}
                results[label] = data
        out = {"turns": turns, "rules": [r["guardrail_prompt"] for r in RULES],
               "load_avg": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}}
        for label, data in results.items():
            out[label] = {k: v for k, v in data.items() if k != "per_turn"}
            out[label]["per_turn"] = data.get("per_turn")
        p50 = {label: (results[label].get("u2u_ms") or {}).get("p50") for label in results}
        if p50.get("with") and p50.get("without"):
            out["ratio_p50"] = round(p50["with"] / p50["without"], 2)
            out["added_p50_ms"] = round(p50["with"] - p50["without"], 1)
        self.stdout.write(json.dumps({k: v for k, v in out.items() if k not in ("with", "without")}
                                     | {label: {k: v for k, v in out[label].items() if k != "per_turn"}
                                        for label in results}, indent=2))
        write_json(json_path, out)

    def _guarded_copy(self, pal_id: str) -> str:
        """A PAL of the bench account made like ``pal_id`` plus the guardrails (through the services
        the API uses); made once, reused by later runs."""
        from cvi_site.models import Account
        from cvi_site.services import account_create
        from guardrails.api.serializers import guardrail_set_input
        from guardrails.services import guardrail_set_create
        from pals.api.serializers import pal_input
        from pals.models import Pal
        from pals.services import pal_create, pal_representation

        source = Pal.objects.filter(pk=pal_id).first()
        if source is None:
            raise ValueError(f"no PAL {pal_id!r}")
        account = Account.objects.filter(username=BENCH_ACCOUNT).first() or account_create(username=BENCH_ACCOUNT)
        name = f"{source.pal_name} + guardrails (bench)"
        existing = Pal.objects.filter(account=account, pal_name=name).first()
        if existing is not None:
            return existing.pk
        rules = guardrail_set_create(account=account, data=guardrail_set_input({"name": "bench", "data": RULES}))
        body = {k: v for k, v in pal_representation(source, mask=False).items()
                if k in ("system_prompt", "context", "greeting", "pipeline_mode", "layers", "default_face_id")}
        body.update(pal_name=name, guardrail_ids=[str(g.uuid) for g in rules.guardrails.all()])
        return pal_create(account=account, data=pal_input(body)).pk
