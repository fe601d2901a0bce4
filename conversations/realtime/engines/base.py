"""The small interfaces every realtime engine implements.

Nothing here imports Django. An embedded engine and a GPU/cloud engine are interchangeable
behind these interfaces; the PAL's layer configuration picks which one a session gets.

Conventions shared by every engine:
- Audio inside the pipeline is mono. Input (mic) audio is float32 in [-1, 1] at 16 kHz;
  synthesised audio is int16 at the engine's own sample rate (``TTSChunk.sample_rate``).
- Times are milliseconds, relative to the start of the audio they describe.
- Engines are loaded once per process and shared by every session of that process. Heavy CPU
  work runs in a thread (``asyncio.to_thread`` or an engine-owned executor), never on the
  event loop. Each engine serialises access to its model itself (a lock or a queue), so
  several sessions can call it at once.
- A failure raises ``EngineError`` with a human message; the pipeline turns it into an
  error event and a clean end of the turn.
"""
from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STT_SAMPLE_RATE = 16_000


class EngineError(Exception):
    """An engine failed; ``str(exc)`` is safe to show to the user (no secrets)."""

    def __init__(self, message: str, *, engine: str = "", code: str = "engine_error") -> None:
        super().__init__(message)
        self.engine = engine
        self.code = code


# ---------------------------------------------------------------------------- VAD
class VADStream(abc.ABC):
    """Per-session, stateful voice activity detection over consecutive chunks."""

    #: samples per chunk the model takes (Silero: 512 at 16 kHz = 32 ms)
    chunk_samples: int = 512

    @abc.abstractmethod
    def probability(self, chunk: np.ndarray) -> float:
        """Speech probability (0..1) of one float32 chunk of ``chunk_samples`` at 16 kHz."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the recurrent state (new stream)."""


class VoiceActivityDetector(abc.ABC):
    """Shared, process-wide model; hands out per-session streams."""

    name: str = "vad"

    @abc.abstractmethod
    def stream(self) -> VADStream: ...


# ---------------------------------------------------------------------------- noise suppression
class NoiseSuppressorStream(abc.ABC):
    """Per-session, stateful noise suppression of the mic audio (voice_isolation)."""

    #: the rate of the audio :meth:`process` returns
    sample_rate: int = 48_000

    @abc.abstractmethod
    def process(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Denoise the next float32 mono frame (any size, at ``sample_rate``); returns the
        denoised audio so far at :attr:`sample_rate` (a frame's tail may wait for the next)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Free the stream's state (idempotent)."""


class NoiseSuppressor(abc.ABC):
    """Shared, process-wide model; hands out per-session streams."""

    name: str = "denoise"

    @abc.abstractmethod
    def stream(self) -> NoiseSuppressorStream: ...


# ---------------------------------------------------------------------------- STT
@dataclass(frozen=True)
class WordTiming:
    word: str
    start_ms: float
    end_ms: float
    #: index of the word's first character in the text it came from (TTS) or -1
    char_start: int = -1
    char_len: int = 0


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str = ""
    words: tuple[WordTiming, ...] = ()
    #: wall time the engine spent, for the latency record
    elapsed_ms: float = 0.0


class SpeechToText(abc.ABC):
    name: str = "stt"
    #: ``transcribe`` takes ``previous_text`` (what was said just before this audio), so a long
    #: turn can be transcribed piece by piece while the user speaks
    continues_text: bool = False
    #: languages (ISO 639-1) the engine hears; empty = any
    languages: frozenset[str] = frozenset()

    @abc.abstractmethod
    async def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None = None,
        hotwords: str | None = None,
        word_timestamps: bool = False,
    ) -> Transcript:
        """Transcribe float32 mono 16 kHz audio. ``language`` is an ISO code or None (detect).
        Engines with ``continues_text`` also take ``previous_text: str | None``."""


# ---------------------------------------------------------------------------- end of turn
class TurnModel(abc.ABC):
    """Judges from the sound of the user's speech (not its words) whether a turn is over."""

    name: str = "turn"
    #: languages (ISO 639-1) the model was trained on; others fall back to the transcript
    languages: frozenset[str] = frozenset()

    @abc.abstractmethod
    async def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for float32 mono 16 kHz audio that ends where the user
        paused (the turn so far)."""


# ---------------------------------------------------------------------------- LLM
@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    #: the arguments as a JSON string, exactly as the model produced them
    arguments: str


@dataclass(frozen=True)
class LLMDelta:
    """One streamed piece of a reply: text, or a complete tool call."""

    text: str = ""
    tool_call: ToolCall | None = None


class LanguageModel(abc.ABC):
    name: str = "llm"
    #: ``stream`` also takes ``json_schema=``: the completion is constrained to JSON of that
    #: schema (a grammar for llama.cpp, ``response_format`` for an OpenAI-compatible server)
    structured_output: bool = False

    @abc.abstractmethod
    def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
    ) -> AsyncIterator[LLMDelta]:
        """Stream a chat completion for OpenAI-style ``messages``.

        Cancellation: closing the iterator (``aclose()``) or cancelling the task that
        iterates it stops generation promptly and frees the model for the next caller.
        """

    async def warm_up(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Optional: prepare for prompts that start with ``messages`` (e.g. the system
        prompt, at session start), so the first reply does not pay for evaluating them.
        A no-op unless the engine has something to gain."""
        return None

    async def aclose(self) -> None:
        """Release per-session resources (e.g. a remote engine's HTTP connections).

        Shared embedded engines keep their model: this is a no-op for them.
        """
        return None


# ---------------------------------------------------------------------------- TTS
@dataclass(frozen=True)
class PhonemeTiming:
    phoneme: str
    start_ms: float


@dataclass
class TTSChunk:
    """Synthesised audio of one phrase with its timings (relative to this chunk's start)."""

    pcm: np.ndarray  # int16 mono
    sample_rate: int
    text: str = ""
    words: list[WordTiming] = field(default_factory=list)
    phonemes: list[PhonemeTiming] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / self.sample_rate


@dataclass(frozen=True)
class VoiceOptions:
    voice: str = ""  # engine voice id, e.g. "en-us" or "en-us+f3" for eSpeak NG
    language: str = "en"
    speed: float = 1.0  # 1.0 = the engine's normal rate
    #: an emotion of ``emotion.EMOTIONS`` (tts_emotion_control; "" = the voice's own manner)
    emotion: str = ""


class TextToSpeech(abc.ABC):
    name: str = "tts"
    sample_rate: int = 22_050

    @abc.abstractmethod
    def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        """Stream audio for one phrase, with word and phoneme timings where the engine has them."""


# ---------------------------------------------------------------------------- face
class FaceRenderer(abc.ABC):
    """Per-session renderer (livekit's avatar contract): takes reply audio, can be cleared,
    gives one video frame per tick of the session clock, reports what was actually played."""

    fps: int = 25
    width: int = 512
    height: int = 512

    @abc.abstractmethod
    def push_audio(self, chunk: TTSChunk) -> None:
        """Queue reply audio (with timings, or none: then audio energy drives the mouth)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Interruption: drop queued speech and ease back to idle."""

    @abc.abstractmethod
    def next_frame(self, t_ms: float) -> np.ndarray:
        """The frame (H×W×3 uint8, RGB) for session-clock time ``t_ms``."""

    @abc.abstractmethod
    def played_ms(self) -> float:
        """How much of the pushed speech audio has been played out so far."""


# ---------------------------------------------------------------------------- perception
@dataclass
class PerceptionSignals:
    """What the embedded perception engine read from one camera frame."""

    t_ms: float
    face_count: int = 0
    present: bool = False
    attentive: bool = False
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    smile: float = 0.0
    mouth_open: float = 0.0
    eyes_closed: bool = False
    brow_raise: float = 0.0
    brightness: float = 0.0
    motion: float = 0.0
    # Added for the embedded perception engine (all optional, defaults keep old callers working).
    #: head roll, degrees (positive: head tilted towards the user's right shoulder)
    roll_deg: float = 0.0
    #: horizontal gaze of the irises within the eyes, -1 (image left) .. 1 (image right)
    gaze_x: float = 0.0
    #: eye aspect ratio (lid gap / eye width) averaged over both eyes; ~0.3 open, <0.15 shut
    eye_openness: float = 0.0
    #: the main face's width as a share of the frame width (0 without a face)
    face_size: float = 0.0
    #: mean luma (0..1) of the main face; 0 without a face
    face_brightness: float = 0.0
    #: a person is in view (segmentation) although no face is found, e.g. turned away
    person_visible: bool = False
    #: wall time the engine spent on this frame
    analysis_ms: float = 0.0


class PerceptionEngine(abc.ABC):
    name: str = "perception"

    @abc.abstractmethod
    async def analyse(self, frame: np.ndarray, *, t_ms: float) -> PerceptionSignals:
        """Read one RGB frame (H×W×3 uint8)."""
