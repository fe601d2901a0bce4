"""The latency record of each reply, written by the processors as the reply moves along.

:class:`MetricsBook` opens a :class:`TurnMetrics` per reply (at the decided turn, or at the
request for a reply that answers no speech), marks each stage's time on the call's clock, and
closes it when the reply has finished playing; the pipeline then emits it as a
``TurnMetricsReady`` event (events.py) and keeps the recent ones.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .clock import Clock


@dataclass
class TurnMetrics:
    """Latency record of one reply. Times are clock seconds; the ``*_ms`` figures in
    :meth:`as_dict` run from the end of the user's speech (``speech_end``).

    For a reply that does not answer speech (respond, tool result) ``speech_end`` is when
    the request arrived.
    """

    reply_id: int
    inference_id: str
    turn_idx: int
    source: str = "speech"  # speech | respond | tool_result
    speech_end: float | None = None  # last voiced audio of the user's turn
    turn_decided: float | None = None
    transcript_final: float | None = None
    llm_started: float | None = None
    llm_first_token: float | None = None
    first_phrase: float | None = None
    tts_first_audio: float | None = None
    first_audio_played: float | None = None
    stt_ms: float | None = None  # time the STT engine spent on the final transcript
    #: how the end of the turn was judged: complete | neutral | incomplete | forced
    turn_judgement: str = ""
    #: P(turn complete) from the end-of-turn model (None: not used) and its time
    turn_p: float | None = None
    turn_model_ms: float | None = None
    speculative: bool = False  # the LLM started before the turn was decided
    interrupted: bool = False
    error: str = ""

    def _rel(self, t: float | None) -> float | None:
        if t is None or self.speech_end is None:
            return None
        return round(1000.0 * (t - self.speech_end), 1)

    def stage_ms(self) -> dict[str, float | None]:
        """Each stage's own duration (ms), where it happened: the silence waited before the
        turn was decided, the STT engine, the LLM to its first token, the first token to the
        first phrase, the TTS of that phrase, and the time synthesised audio waited to be
        played (for a speculative reply: for the turn to be decided)."""

        def span(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(1000.0 * (b - a), 1)

        return {
            "turn_wait_ms": span(self.speech_end, self.turn_decided),
            "stt_ms": None if self.stt_ms is None else round(self.stt_ms, 1),
            "llm_first_token_ms": span(self.llm_started, self.llm_first_token),
            "first_phrase_ms": span(self.llm_first_token, self.first_phrase),
            "tts_first_audio_ms": span(self.first_phrase, self.tts_first_audio),
            "playout_wait_ms": span(self.tts_first_audio, self.first_audio_played),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "reply_id": self.reply_id,
            "source": self.source,
            "turn_decided_ms": self._rel(self.turn_decided),
            "transcript_final_ms": self._rel(self.transcript_final),
            "llm_started_ms": self._rel(self.llm_started),
            "llm_first_token_ms": self._rel(self.llm_first_token),
            "first_phrase_ms": self._rel(self.first_phrase),
            "tts_first_audio_ms": self._rel(self.tts_first_audio),
            "first_audio_played_ms": self._rel(self.first_audio_played),
            "u2u_ms": self._rel(self.first_audio_played),
            "stt_ms": None if self.stt_ms is None else round(self.stt_ms, 1),
            "turn_judgement": self.turn_judgement,
            "turn_p": None if self.turn_p is None else round(self.turn_p, 3),
            "turn_model_ms": None if self.turn_model_ms is None else round(self.turn_model_ms, 1),
            "speculative": self.speculative,
            "interrupted": self.interrupted,
            "error": self.error,
            "stages": self.stage_ms(),
        }


class MetricsBook:
    """Per-reply latency records, written by the processors as a reply moves along."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._open: dict[int, TurnMetrics] = {}
        self.done: list[TurnMetrics] = []
        self.max_done = 500

    def open(self, reply_id: int, inference_id: str, turn_idx: int, *, source: str = "speech",
             speech_end: float | None = None) -> TurnMetrics:
        m = TurnMetrics(reply_id, inference_id, turn_idx, source=source,
                        speech_end=self._clock.monotonic() if speech_end is None else speech_end)
        self._open[reply_id] = m
        return m

    def get(self, reply_id: int | None) -> TurnMetrics | None:
        return None if reply_id is None else self._open.get(reply_id)

    def reply_for(self, inference_id: str | None) -> int | None:
        """The open reply with this inference id (None if there is none)."""
        if inference_id:
            for reply_id, m in self._open.items():
                if m.inference_id == inference_id:
                    return reply_id
        return None

    def mark(self, reply_id: int | None, name: str, *, once: bool = True) -> None:
        m = self.get(reply_id)
        if m is None:
            return
        if once and getattr(m, name) is not None:
            return
        setattr(m, name, self._clock.monotonic())

    def update(self, reply_id: int | None, **values: Any) -> None:
        m = self.get(reply_id)
        if m is not None:
            for k, v in values.items():
                setattr(m, k, v)

    def drop(self, reply_id: int) -> None:
        self._open.pop(reply_id, None)

    def close(self, reply_id: int) -> TurnMetrics | None:
        m = self._open.pop(reply_id, None)
        if m is not None:
            self.done.append(dataclasses.replace(m))
            if len(self.done) > self.max_done:
                del self.done[: len(self.done) - self.max_done]
        return m
