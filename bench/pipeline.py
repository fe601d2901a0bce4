"""Pipeline benchmark: eSpeak NG speech through the full pipeline, in real time.

``run_pipeline_bench`` is what ``manage.py bench_pipeline`` calls. It speaks each utterance
(voices rotate), pushes it through a :class:`ConversationPipeline` tick by tick in real time
with the silences between turns, pulls the reply audio like a transport, and measures per
turn, on the one pipeline timeline (input sample i is at i/16 ms, output sample j at
j/48 ms):

- ``u2u_ms``: last voiced sample of the utterance in the input -> first reply audio sample
  above a level threshold in the output;
- the stages of the pipeline's own latency record (``TurnMetrics.stage_ms``).

- ``wer``: word error rate of the final transcripts against the sentences spoken (0..1).

The pipeline comes from the caller (``manage.py bench_pipeline`` builds it exactly as a live
call does: ``live.config.load_session_config`` + ``live.config.pipeline_for``); nothing here changes
its configuration. It returns ``{"turns", "u2u_ms": {p50, p95, max}, "stages": {...},
"wer", "rtf": {...}, "per_turn": [...]}``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.harness import RealtimeDriver
from conversations.realtime import events as ev
from conversations.realtime.agent import ConversationPipeline
from conversations.realtime.audio import resample
from conversations.realtime.engines.base import VoiceOptions

logger = logging.getLogger(__name__)

DEFAULT_UTTERANCES: tuple[str, ...] = (
    "What time is it right now?",
    "Please tell me something about the ocean.",
    "What is the weather like today?",
    "Tell me a short story about a dragon.",
    "How are you doing this morning?",
    "What should I cook for dinner tonight?",
    "Can you recommend a good movie?",
    "Where is the nearest train station?",
    "Why is the sky blue?",
    "What is your favourite colour?",
)
DEFAULT_VOICES: tuple[str, ...] = ("en-us", "en-us+f4", "en-us+m3", "en")
LEVEL = 300  # int16 level above which an output sample counts as reply audio (~ -40 dBFS)
VOICED = 0.02  # float level above which an input sample counts as voiced


def percentiles(values: Sequence[float | None]) -> dict[str, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    a = np.asarray(vals)
    return {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1), "n": len(vals)}


def speak(tts: Any, text: str, voice: str) -> np.ndarray:
    """Text -> float32 16 kHz speech with the engine's voice (blocking; eSpeak is fast)."""
    if hasattr(tts, "synthesize_blocking"):
        chunks = tts.synthesize_blocking(text, voice=VoiceOptions(voice=voice))
    else:  # pragma: no cover - any other TextToSpeech
        async def collect() -> list:
            return [c async for c in tts.synthesize(text, voice=VoiceOptions(voice=voice))]
        chunks = asyncio.run(collect())
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768.0
    return resample(pcm, chunks[0].sample_rate, 16_000)


_WORD_RE = re.compile(r"[a-z0-9']+")


def normalise_words(text: str) -> str:
    """Lower case, no punctuation (hyphens split words): what word error is counted on."""
    return " ".join(_WORD_RE.findall(text.lower().replace("-", " ").replace("’", "'")))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str | None]) -> float | None:
    """Word error rate over all pairs (jiwer; a missing transcript counts every word missed)."""
    import jiwer

    pairs = [(normalise_words(r), normalise_words(h or "")) for r, h in zip(references, hypotheses)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None
    words = sum(len(r.split()) for r, _ in pairs)
    errors = 0
    for r, h in pairs:
        if h:
            out = jiwer.process_words(r, h)
            errors += out.substitutions + out.deletions + out.insertions
        else:
            errors += len(r.split())
    return round(errors / words, 4)


async def run_pipeline_bench(pipe: ConversationPipeline, speaker: Any, *, turns: int = 10,
                             utterances: Sequence[str] | None = None,
                             voices: Sequence[str] = DEFAULT_VOICES, gap_ms: float = 1500.0,
                             reply_timeout_s: float = 60.0,
                             on_turn: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``turns`` turns through ``pipe`` (built as a live call builds it) with speech made
    by ``speaker`` (a TTS engine) and return the figures. Like a polite person, the next
    utterance starts ``gap_ms`` after the previous reply has been played to its end."""
    utterances = list(utterances or DEFAULT_UTTERANCES)
    drv = RealtimeDriver(pipe, speed=1.0)
    per_turn: list[dict[str, Any]] = []
    speech_s = 0.0
    stt_ms_total = 0.0
    try:
        await pipe.start()
        if pipe.config.custom_greeting:
            await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=30_000)
        await drv.silence(500)
        for i in range(turns):
            text = utterances[i % len(utterances)]
            voice = voices[i % len(voices)]
            audio = speak(speaker, text, voice)
            voiced = np.flatnonzero(np.abs(audio) > VOICED)
            t_in0 = drv.t_ms
            await drv.play(audio)
            last_voiced_ms = t_in0 + 1000.0 * (voiced[-1] + 1) / 16_000 if len(voiced) else drv.t_ms
            n_metrics = len(pipe.turn_metrics)
            hit = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=reply_timeout_s * 1000,
                                       after_ms=t_in0)
            u2u = None
            if hit is not None:
                out = drv.rec.audio()
                from_sample = int(last_voiced_ms * pipe.output_sample_rate / 1000)
                loud = np.flatnonzero(np.abs(out[from_sample:]) > LEVEL)
                if len(loud):
                    u2u = 1000.0 * loud[0] / pipe.output_sample_rate
            await drv.run_until(lambda: len(pipe.turn_metrics) > n_metrics,
                                timeout_ms=reply_timeout_s * 1000)
            record = pipe.turn_metrics[-1].as_dict() if len(pipe.turn_metrics) > n_metrics else {}
            heard = [e["properties"]["speech"] for t, e in drv.rec.of_type(ev.UTTERANCE)
                     if t > t_in0 and e["properties"]["role"] == "user"]
            per_turn.append({"text": text, "voice": voice, "heard": " ".join(heard) if heard else None,
                             "turns_heard": len(heard),
                             "u2u_ms": None if u2u is None else round(u2u, 1), "record": record})
            speech_s += len(audio) / 16_000
            stt_ms_total += (record.get("stt_ms") or 0.0)
            logger.info("turn %d: u2u %s ms, heard %r", i + 1, per_turn[-1]["u2u_ms"], per_turn[-1]["heard"])
            await drv.run_until(lambda: not pipe.output.replica_active, timeout_ms=120_000)
            replies = [e["properties"]["speech"] for t, e in drv.rec.of_type(ev.UTTERANCE)
                       if t > t_in0 and e["properties"]["role"] == "replica"]
            per_turn[-1]["reply"] = replies[0] if replies else None
            if on_turn is not None:
                on_turn(per_turn[-1])
            await drv.silence(gap_ms)
    finally:
        await pipe.close()

    stage_names = ("turn_wait_ms", "stt_ms", "llm_first_token_ms", "first_phrase_ms",
                   "tts_first_audio_ms", "playout_wait_ms")
    stages = {name: percentiles([t["record"].get("stages", {}).get(name) for t in per_turn])
              for name in stage_names}
    return {
        "turns": turns,
        "u2u_ms": percentiles([t["u2u_ms"] for t in per_turn]),
        "wer": word_error_rate([t["text"] for t in per_turn], [t["heard"] for t in per_turn]),
        "split_turns": sum(1 for t in per_turn if t["turns_heard"] > 1),
        "stages": stages,
        "pipeline_u2u_ms": percentiles([t["record"].get("u2u_ms") for t in per_turn]),
        "rtf": {"stt": round(stt_ms_total / 1000.0 / speech_s, 3) if speech_s else None},
        "dropped_input_ms": pipe.stats["dropped_input_ms"],
        "per_turn": per_turn,
    }


# ---------------------------------------------------------------------------- turn end
def speak_words(tts: Any, text: str, voice: str) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Like :func:`speak`, with each word's (word, start_ms, end_ms) in the returned audio."""
    chunks = tts.synthesize_blocking(text, voice=VoiceOptions(voice=voice))
    words: list[tuple[str, float, float]] = []
    offset = 0.0
    for c in chunks:
        words += [(w.word, w.start_ms + offset, w.end_ms + offset) for w in c.words]
        offset += c.duration_ms
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768.0
    return resample(pcm, chunks[0].sample_rate, 16_000), words


def cut_after_words(audio: np.ndarray, words: Sequence[tuple[str, float, float]], n: int) -> int:
    """Sample index just after the ``n``-th word (in the gap before the next one): a sentence
    cut there keeps the intonation of a thought that goes on."""
    end = words[n - 1][2]
    if n < len(words):
        end += min(60.0, max(0.0, words[n][1] - end) / 2)
    return min(len(audio), int(end * 16))


def parse_turn_cases(lines: Sequence[str]) -> list[tuple[str, str, str]]:
    """``C<TAB>sentence`` or ``I<TAB>fragment | rest`` lines -> (kind, first, rest)."""
    cases = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        kind, _, text = line.partition("\t")
        kind = kind.strip().upper()
        if kind not in ("C", "I") or not text.strip():
            raise ValueError(f"line {n}: expected C<TAB>sentence or I<TAB>fragment | rest")
        first, _, rest = text.partition("|")
        if kind == "I" and not rest.strip():
            raise ValueError(f"line {n}: a fragment needs the rest of its sentence after ' | '")
        cases.append((kind, first.strip(), rest.strip()))
    return cases


async def run_turn_end_bench(pipe: ConversationPipeline, speaker: Any, cases: Sequence[tuple[str, str, str]], *,
                             voices: Sequence[str] = DEFAULT_VOICES, pause_ms: float = 700.0,
                             on_case: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Each complete sentence is spoken and followed by silence: right when the turn ends with
    the "complete" judgement (the patience's shortest wait). Each fragment is cut from the
    whole sentence spoken (so it keeps the voice of a thought that goes on), followed by
    ``pause_ms`` of silence and the rest: right when it stays one turn."""
    drv = RealtimeDriver(pipe, speed=1.0)
    rows: list[dict[str, Any]] = []
    try:
        await pipe.start()
        if pipe.config.custom_greeting:
            await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=30_000)
        await drv.silence(500)
        for i, (kind, first, rest) in enumerate(cases):
            voice = voices[i % len(voices)]
            audio, words = speak_words(speaker, f"{first} {rest}".strip(), voice)
            t0 = drv.t_ms
            n_metrics = len(pipe.turn_metrics)
            if kind == "C":
                await drv.play(audio)
                voiced = np.flatnonzero(np.abs(audio) > VOICED)
                end_ms = t0 + 1000.0 * (voiced[-1] + 1) / 16_000
            else:
                cut = cut_after_words(audio, words, len(first.split()))
                await drv.play(audio[:cut])
                early = drv.t_ms
                await drv.silence(pause_ms)
                premature = drv.rec.first(ev.UTTERANCE, t0, lambda e: e["properties"]["role"] == "user")
                await drv.play(audio[cut:])
                voiced = np.flatnonzero(np.abs(audio[cut:]) > VOICED)
                end_ms = early + pause_ms + 1000.0 * ((voiced[-1] + 1) if len(voiced) else 0) / 16_000
            hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=10_000, after_ms=t0,
                                       where=lambda e: e["properties"]["role"] == "user")
            await drv.run_until(lambda: len(pipe.turn_metrics) > n_metrics, timeout_ms=60_000)
            await drv.run_until(lambda: not pipe.output.replica_active, timeout_ms=120_000)
            user_turns = [e for t, e in drv.rec.of_type(ev.UTTERANCE)
                          if t > t0 and e["properties"]["role"] == "user"]
            record = pipe.turn_metrics[n_metrics].as_dict() if len(pipe.turn_metrics) > n_metrics else {}
            decide_ms = None if hit is None else round(hit[0] - end_ms, 1)
            if kind == "C":
                correct = hit is not None and record.get("turn_judgement") == "complete"
            else:
                correct = len(user_turns) == 1 and not premature
            rows.append({"kind": kind, "text": f"{first} | {rest}" if rest else first, "voice": voice,
                         "heard": [e["properties"]["speech"] for e in user_turns], "correct": correct,
                         "decide_ms": decide_ms, "judgement": record.get("turn_judgement"),
                         "turn_p": record.get("turn_p"), "turn_model_ms": record.get("turn_model_ms")})
            if on_case is not None:
                on_case(rows[-1])
            await drv.silence(1000)
    finally:
        await pipe.close()

    def accuracy(kind: str) -> float | None:
        picked = [r["correct"] for r in rows if r["kind"] == kind]
        return round(sum(picked) / len(picked), 3) if picked else None

    return {
        "cases": len(rows),
        "complete_accuracy": accuracy("C"),
        "incomplete_accuracy": accuracy("I"),
        "decide_ms": percentiles([r["decide_ms"] for r in rows if r["kind"] == "C"]),
        "turn_model_ms": percentiles([r["turn_model_ms"] for r in rows]),
        "per_case": rows,
    }
