"""Small fake engines to test the pipeline's logic in isolation (never instead of the real
engines' tests, which are in test_pipeline_real.py).

Fake "speech" is a tone: each burst of tone is one word. ``FakeVAD`` says "voiced" when a
chunk has energy; ``FakeSTT`` counts the bursts in the audio it gets and returns that many
words of its script, so a transcript of half an utterance is half the sentence (with no
full stop), as with a real recogniser.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np

from conversations.realtime.engines.base import (
    EngineError,
    LanguageModel,
    LLMDelta,
    SpeechToText,
    TextToSpeech,
    ToolCall,
    Transcript,
    TTSChunk,
    TurnModel,
    VADStream,
    VoiceActivityDetector,
    VoiceOptions,
    WordTiming,
)

SR = 16_000
WORD_MS = 240  # a fake word: a tone burst
GAP_MS = 80  # between the words of one phrase (shorter than any pause threshold)


def tone(ms: float, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    n = int(SR * ms / 1000)
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def silence(ms: float) -> np.ndarray:
    return np.zeros(int(SR * ms / 1000), np.float32)


def words_audio(n_words: int, *, word_ms: float = WORD_MS, gap_ms: float = GAP_MS) -> np.ndarray:
    parts = []
    for i in range(n_words):
        parts.append(tone(word_ms))
        if i < n_words - 1:
            parts.append(silence(gap_ms))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def count_bursts(audio: np.ndarray, *, chunk: int = 160) -> int:
    n = len(audio) // chunk
    if n == 0:
        return 0
    energy = np.sqrt((audio[: n * chunk].reshape(n, chunk) ** 2).mean(axis=1)) > 0.01
    bursts, prev = 0, False
    for e in energy:
        if e and not prev:
            bursts += 1
        prev = bool(e)
    return bursts


class _FakeVADStream(VADStream):
    def probability(self, chunk: np.ndarray) -> float:
        assert chunk.shape == (512,), chunk.shape
        return 0.95 if float(np.sqrt((chunk ** 2).mean())) > 0.01 else 0.02

    def reset(self) -> None:
        pass


class FakeVAD(VoiceActivityDetector):
    name = "fake-vad"

    def stream(self) -> VADStream:
        return _FakeVADStream()


class FakeSTT(SpeechToText):
    """Returns the first N words of ``script`` for N bursts (the whole script + its
    punctuation once all words are there). ``script`` may be a callable(bursts) -> text."""

    name = "fake-stt"

    def __init__(self, script: str | Callable[[int], str] = "", *, delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.fail = False

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                         hotwords: str | None = None, word_timestamps: bool = False) -> Transcript:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        else:
            await asyncio.sleep(0)
        if self.fail:
            raise EngineError("stt exploded", engine="fake-stt")
        n = count_bursts(audio)
        self.calls.append(n)
        if callable(self.script):
            return Transcript(self.script(n), language="en")
        words = self.script.split()
        if n >= len(words):
            return Transcript(self.script, language="en")
        return Transcript(" ".join(w.strip(".,?!") if i == n - 1 else w
                                   for i, w in enumerate(words[:n])), language="en")


class FakeTurnModel(TurnModel):
    """P(turn complete) fixed, or ``p(audio)``; counts its calls."""

    name = "fake-turn"
    languages = frozenset({"en"})

    def __init__(self, p: float | Callable[[np.ndarray], float] = 0.9) -> None:
        self.p = p
        self.calls = 0

    async def probability(self, audio: np.ndarray) -> float:
        self.calls += 1
        await asyncio.sleep(0)
        return self.p(audio) if callable(self.p) else self.p


class FakeLLM(LanguageModel):
    """Streams ``reply`` word by word (or what ``reply(messages)`` returns); may emit tool
    calls first. Records every request."""

    name = "fake-llm"

    def __init__(self, reply: str | Callable[[list[dict[str, Any]]], str] = "Hello there. How are you?",
                 *, token_delay_s: float = 0.0) -> None:
        self.reply = reply
        self.token_delay_s = token_delay_s
        self.requests: list[list[dict[str, Any]]] = []
        self.tools_offered: list[bool] = []
        self.sampling: list[dict[str, Any]] = []  # max_tokens and temperature of each request
        self.tool_calls: list[ToolCall] = []  # emitted (once) before the text of the next reply
        self.fail_after: int | None = None  # raise after this many tokens
        self.started = 0
        self.closed = 0

    async def stream(self, messages: Sequence[dict[str, Any]], *, tools=None,  # noqa: ANN001
                     max_tokens: int = 256, temperature: float = 0.7) -> AsyncIterator[LLMDelta]:
        self.requests.append([dict(m) for m in messages])
        self.sampling.append({"max_tokens": max_tokens, "temperature": temperature})
        self.tools_offered.append(bool(tools))
        self.started += 1
        try:
            # a model can only call the tools it is offered
            calls, self.tool_calls = (self.tool_calls, []) if tools else ([], self.tool_calls)
            for c in calls:
                yield LLMDelta(tool_call=c)
            text = self.reply(list(messages)) if callable(self.reply) else self.reply
            for i, word in enumerate(text.split(" ")):
                if self.fail_after is not None and i >= self.fail_after:
                    raise EngineError("llm exploded", engine="fake-llm")
                await asyncio.sleep(self.token_delay_s)
                yield LLMDelta(text=word if i == 0 else " " + word)
        finally:
            self.closed += 1


class FakeTTS(TextToSpeech):
    """A tone of ``ms_per_char`` per character, with evenly spread word timings."""

    name = "fake-tts"
    sample_rate = 16_000

    def __init__(self, *, ms_per_char: float = 50.0) -> None:
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []
        self.fail_on: str | None = None

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        await asyncio.sleep(0)
        if self.fail_on and self.fail_on in text:
            raise EngineError("tts exploded", engine="fake-tts")
        self.texts.append(text)
        dur = self.ms_per_char * len(text)
        n = int(self.sample_rate * dur / 1000)
        pcm = (8000 * np.sin(2 * np.pi * 300 * np.arange(n) / self.sample_rate)).astype(np.int16)
        words: list[WordTiming] = []
        pos = 0
        for w in text.split():
            start = text.index(w, pos)
            pos = start + len(w)
            words.append(WordTiming(w, self.ms_per_char * start, self.ms_per_char * pos,
                                    char_start=start, char_len=len(w)))
        yield TTSChunk(pcm=pcm, sample_rate=self.sample_rate, text=text, words=words)


# ---------------------------------------------------------------------------- wiring
def run(coro: Any, timeout: float = 60.0) -> Any:
    """Run a test coroutine with one overall timeout (every await inside is bounded)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def make_pipeline(*, layers: dict[str, Any] | None = None, system_prompt: str = "You are a test.",
                  context: str = "", greeting: str = "", mode: str = "full",
                  stt: FakeSTT | None = None, llm: FakeLLM | None = None, tts: FakeTTS | None = None,
                  conversational_context: str = "", renderer: Any = None, speed: float = 0.0,
                  events: list[dict[str, Any]] | None = None, turn: Any = None,
                  objectives: dict[str, Any] | None = None, guardrails: list[dict[str, Any]] | None = None):  # noqa: ANN201
    from bench.harness import RealtimeDriver
    from conversations.realtime.agent import ConversationPipeline, EngineBundle
    from conversations.realtime.clock import ManualClock
    from conversations.realtime.config import PipelineConfig

    cfg = PipelineConfig.from_layers(system_prompt, context, layers or {},
                                     conversational_context=conversational_context,
                                     custom_greeting=greeting, pipeline_mode=mode,
                                     objectives=objectives, guardrails=guardrails)
    engines = EngineBundle(vad=FakeVAD(), tts=tts or FakeTTS(), stt=stt or FakeSTT("Hello there."),
                           llm=llm or FakeLLM(), turn=turn)
    clock = ManualClock()
    from conversations.realtime.protocol import to_wire

    sink = (lambda e: events.append(to_wire(e, "ctest"))) if events is not None else None
    pipe = ConversationPipeline(cfg, engines, conversation_id="ctest", event_sink=sink,
                                clock=clock, renderer=renderer, output_sample_rate=16_000)
    driver = RealtimeDriver(pipe, speed=speed, clock=clock)
    return pipe, driver, engines
