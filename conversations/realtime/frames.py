"""Typed frames that flow through the realtime pipeline (design after pipecat).

Two families:

- :class:`SystemFrame`: handled at once by every processor, jumping any queued data
  (start, cancel, interruption, speaking state, turn commit/discard, errors).
- :class:`DataFrame`: processed in order through each processor's bounded input queue
  (audio, transcripts, LLM text, synthesised audio, reply brackets). An interruption drops
  every queued data frame; a discard drops those of one reply.

``reply_id`` ties data frames to the reply they belong to. A reply is created by the user
turn it answers (one id per *attempt*: a speculative attempt that the user talks over is
discarded and the next attempt gets a new id), by ``conversation.respond``, an echo or the
greeting. ``inference_id`` is the protocol's id of that reply.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .engines.base import ToolCall, TTSChunk

_ids = itertools.count(1)

ReplyKind = Literal["reply", "greeting", "echo"]


@dataclass(kw_only=True)
class Frame:
    id: int = field(default_factory=lambda: next(_ids), repr=False, compare=False)

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(kw_only=True)
class SystemFrame(Frame):
    """Handled immediately, ahead of queued data."""


@dataclass(kw_only=True)
class DataFrame(Frame):
    """Processed in order; flushed by an interruption."""

    reply_id: int | None = None


# ---------------------------------------------------------------------------- system frames
@dataclass(kw_only=True)
class StartFrame(SystemFrame):
    pass


@dataclass(kw_only=True)
class CancelFrame(SystemFrame):
    """Stop now: every processor drops what it holds."""


@dataclass(kw_only=True)
class InterruptionFrame(SystemFrame):
    """Barge-in (or ``conversation.interrupt``): cancel in-flight work and flush queued data."""

    reason: str = "user"


@dataclass(kw_only=True)
class UserStartedSpeakingFrame(SystemFrame):
    t_ms: float = 0.0  # input-audio time


@dataclass(kw_only=True)
class UserStoppedSpeakingFrame(SystemFrame):
    t_ms: float = 0.0


@dataclass(kw_only=True)
class TurnCommitFrame(SystemFrame):
    """The user's turn is over: reply ``reply_id`` may be heard. Carries the final text so
    processors that have not yet seen the transcript (it is data, and queued) can record it."""

    reply_id: int
    inference_id: str
    turn_idx: int
    text: str


@dataclass(kw_only=True)
class TurnDiscardFrame(SystemFrame):
    """The user went on after a pause: throw away speculative reply ``reply_id``."""

    reply_id: int


@dataclass(kw_only=True)
class ErrorFrame(SystemFrame):
    message: str
    engine: str = ""
    code: str = "engine_error"
    reply_id: int | None = None


# ---------------------------------------------------------------------------- data frames
@dataclass(kw_only=True)
class EndFrame(DataFrame):
    """Graceful end: processed after everything queued before it."""


@dataclass(kw_only=True)
class InputAudioFrame(DataFrame):
    """Mic audio, float32 mono at 16 kHz. ``arrival`` is the clock time it was pushed."""

    pcm: np.ndarray
    arrival: float = 0.0

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / 16_000


@dataclass(kw_only=True)
class UserTranscriptFrame(DataFrame):
    """What the user said in one turn attempt; ``speculative`` until a commit says otherwise."""

    text: str
    inference_id: str
    turn_idx: int
    speculative: bool = False
    language: str = ""


@dataclass(kw_only=True)
class LLMRunFrame(DataFrame):
    """Generate a reply from the history as it stands (after a tool result)."""

    inference_id: str
    turn_idx: int


@dataclass(kw_only=True)
class ReplyStartFrame(DataFrame):
    inference_id: str
    turn_idx: int
    kind: ReplyKind = "reply"
    interruptible: bool = True
    #: the user's turn a generated reply answers (for checks on the pair)
    user_text: str = ""


@dataclass(kw_only=True)
class ReplyEndFrame(DataFrame):
    #: set when the reply ended early because an engine failed
    error: str = ""


@dataclass(kw_only=True)
class LLMTextFrame(DataFrame):
    """Streamed reply text (LLM tokens, or streamed echo text)."""

    text: str


@dataclass(kw_only=True)
class TextFrame(DataFrame):
    """A complete text to speak as is (greeting, echo)."""

    text: str


@dataclass(kw_only=True)
class ToolCallFrame(DataFrame):
    call: ToolCall


@dataclass(kw_only=True)
class TTSAudioFrame(DataFrame):
    """Synthesised audio of one phrase, with the engine's word/phoneme timings."""

    chunk: TTSChunk


@dataclass(kw_only=True)
class OutputAudioFrame(DataFrame):
    """Raw audio to play as is (``conversation.echo`` with audio): int16 mono."""

    pcm: np.ndarray
    sample_rate: int
