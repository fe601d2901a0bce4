"""Speech recognisers side by side on the same eSpeak NG speech: word error and time per
utterance for each embedded STT engine and beam size (what the English default is chosen by)."""
from __future__ import annotations

import json
import os
import time

from django.core.management.base import BaseCommand, CommandError

from bench.live import load_utterances, stats, write_json


class Command(BaseCommand):
    help = "Word error rate and latency of the embedded speech recognisers (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--utterances", help="file with one sentence per line (default: the built-in set)")
        parser.add_argument("--engines", default="whisper-base,whisper-tiny.en")
        parser.add_argument("--beams", default="1,5", help="beam sizes to try, comma-separated")
        parser.add_argument("--threads", default="", help="CPU thread counts to try, comma-separated "
                            "(default: the engines' thread plan for this box)")
        parser.add_argument("--voice", action="append", dest="voices", help="eSpeak NG voice (repeatable)")
        parser.add_argument("--json", dest="json_path")

    def handle(self, *args, utterances, engines, beams, threads, voices, json_path, **options):
        from bench.pipeline import DEFAULT_VOICES, speak, word_error_rate
        from conversations.realtime.engines import registry

        try:
            texts = load_utterances(utterances)
            beam_sizes = [int(b) for b in beams.split(",")]
            thread_counts = [int(t) for t in threads.split(",") if t.strip()] or [registry.thread_plan().stt]
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        voices = voices or list(DEFAULT_VOICES)
        speaker = registry.get_tts("espeak-ng")
        samples = [(t, voices[i % len(voices)], speak(speaker, t, voices[i % len(voices)])) for i, t in enumerate(texts)]
        load0 = os.getloadavg()[0]
        results = []
        for name in [e.strip() for e in engines.split(",") if e.strip()]:
            base = registry.get_stt(name, language="en")
            for beam, cpu_threads in [(b, t) for b in beam_sizes for t in thread_counts]:
                # the registry's engine with another beam size or thread count: the same model files
                stt = base.variant(beam_size=beam, cpu_threads=cpu_threads)
                stt.transcribe_blocking(samples[0][2], language="en")  # warm
                heard, times = [], []
                for _text, _voice, audio in samples:
                    t0 = time.perf_counter()
                    heard.append(stt.transcribe_blocking(audio, language="en").text)
                    times.append(1000.0 * (time.perf_counter() - t0))
                row = {"engine": name, "beam": beam, "threads": cpu_threads, "wer": word_error_rate([s[0] for s in samples], heard),
                       "ms": stats(times), "misheard": [{"said": s[0], "heard": h} for s, h in zip(samples, heard)
                                                       if word_error_rate([s[0]], [h])]}
                results.append(row)
                self.stdout.write(f"{name} beam {beam}, {cpu_threads} threads: WER {row['wer']}, {row['ms']['p50']} ms median "
                                  f"({row['ms']['p95']} p95), {len(row['misheard'])} of {len(samples)} not exact")
        data = {"utterances": len(samples), "load_avg": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
                "results": results}
        self.stdout.write(json.dumps([{k: v for k, v in r.items() if k != "misheard"} for r in results], indent=2))
        write_json(json_path, data)
