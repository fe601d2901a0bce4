"""Does the agent answer simple questions right? Each question goes through the stock PAL's
LLM path as text (its system prompt and context, its decoding settings, the model a call
gets) with a fresh history; an answer is right when it contains one of the question's
keywords and none of its wrong ones (case-insensitive)."""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bench.live import live_session_config, stats, write_json

DEFAULT_QUESTIONS = Path(__file__).resolve().parents[2] / "bench_data" / "questions_en.txt"


def load_questions(path: str) -> list[tuple[str, list[str], list[str]]]:
    """``question<TAB>right1|right2[<TAB>wrong1|wrong2]`` lines."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        question, _, keys = line.partition("\t")
        right, _, wrong = keys.partition("\t")
        keywords = [k.strip() for k in right.split("|") if k.strip()]
        if not question.strip() or not keywords:
            raise ValueError(f"line {n}: expected question<TAB>keyword1|keyword2")
        out.append((question.strip(), keywords, [k.strip() for k in wrong.split("|") if k.strip()]))
    return out


class Command(BaseCommand):
    help = "Accuracy and time to first token of the embedded LLM on everyday questions (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS),
                            help="question<TAB>right1|right2[<TAB>wrong1|wrong2] lines")
        parser.add_argument("--model", help="an embedded model other than the PAL's (default: what a call gets)")
        parser.add_argument("--pal", default="pstock000001")
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, questions, model, pal, json_path, **options):
        from conversations.realtime.context import ConversationContext
        from conversations.realtime.engines import registry
        from conversations.realtime.frontdoor import build_engines
        from cvi_site.llmservice import llm_service_as_served

        try:
            items = load_questions(questions)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{questions}: {exc}") from None
        config = live_session_config(pal_id=pal).pipeline
        if model:
            import dataclasses

            if registry.canonical_name("llm", model) not in registry.EMBEDDED_LLMS:
                raise CommandError(f"--model must be an embedded model: {', '.join(registry.EMBEDDED_LLMS)}")
            # the same PAL with another embedded model: what a PAL naming it gets
            config = dataclasses.replace(config, llm=dataclasses.replace(config.llm, model=model, base_url=""))
        load0 = os.getloadavg()[0]
        with llm_service_as_served():
            llm = build_engines(config).llm
            self.stdout.write(f"{len(items)} questions to {llm.name} "
                              f"(max_tokens {config.llm.max_tokens}, temperature {config.llm.temperature})…")

            async def ask(question: str) -> tuple[str, float | None, float]:
                ctx = ConversationContext(system_prompt=config.system_prompt, context=config.context,
                                          conversational_context=config.conversational_context)
                ctx.add_user(1, question)
                t0 = time.perf_counter()
                first = None
                text = []
                async for delta in llm.stream(ctx.messages(), max_tokens=config.llm.max_tokens,
                                              temperature=config.llm.temperature):
                    if delta.text:
                        first = first or 1000.0 * (time.perf_counter() - t0)
                        text.append(delta.text)
                return "".join(text).strip(), first, 1000.0 * (time.perf_counter() - t0)

            async def run() -> list[dict]:
                rows = []
                try:
                    await llm.warm_up(ConversationContext(system_prompt=config.system_prompt,
                                                          context=config.context).messages())
                    for question, keywords, wrong in items:
                        answer, ttft, total = await ask(question)
                        low = answer.lower()
                        right = any(k.lower() in low for k in keywords) and not any(w.lower() in low for w in wrong)
                        rows.append({"question": question, "answer": answer, "right": right,
                                     "ttft_ms": None if ttft is None else round(ttft, 1), "total_ms": round(total, 1)})
                        self.stdout.write(f"  {'ok ' if right else 'BAD'} {ttft and round(ttft)} ms  {question} -> {answer!r}")
                finally:
                    await llm.aclose()
                return rows

            rows = asyncio.run(run())
        data = {"model": llm.name, "questions": len(rows),
                "accuracy": round(sum(r["right"] for r in rows) / len(rows), 3),
                "ttft_ms": stats([r["ttft_ms"] for r in rows]), "total_ms": stats([r["total_ms"] for r in rows]),
                "load_avg": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}, "answers": rows}
        self.stdout.write(json.dumps({k: v for k, v in data.items() if k != "answers"}, indent=2))
        write_json(json_path, data)
