"""The replica's audio out: a playout queue that the transport pulls, paced by its clock.

Replies are played one after another in the order they were started. A reply plays only
once its turn is committed, so a speculative reply can be fully synthesised and still wait
here, unheard, until the user's turn is really over (or be discarded). ``read_audio`` is the
one place audio leaves the pipeline; what it hands out counts as *played*:

- ``conversation.replica.started_speaking`` when a reply's first sample is pulled,
  ``conversation.utterance.streaming`` (captions) as each phrase starts,
  ``conversation.replica.stopped_speaking {duration, interrupted}`` and the replica's
  ``conversation.utterance`` when its last sample is pulled or it is interrupted;
- each phrase (``TTSChunk`` with its timings) is handed to the face renderer exactly when
  its first sample is pulled, so face and voice start together on the transport's clock;
- an interruption empties the queue at once (the next pull is silence) and the history keeps
  only the words that were played: whole phrases, plus the words of the phrase in progress
  whose middle had been played (TTS word timings).
"""
from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field

import numpy as np

from .audio import StreamResampler, float_to_int16
from .clock import Clock
from .context import ConversationContext
from .engines.base import FaceRenderer, ToolCall, TTSChunk
from .events import (
    THINKING_AFTER_S,
    EventEmitter,
    ReplicaStartedSpeaking,
    ReplicaStoppedSpeaking,
    ReplicaThinking,
    ToolCallRequested,
    TurnMetricsReady,
    Utterance,
    UtteranceStreaming,
)
from .frames import (
    CancelFrame,
    Frame,
    InterruptionFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    ReplyKind,
    ReplyStartFrame,
    ToolCallFrame,
    TTSAudioFrame,
    TurnCommitFrame,
    TurnDiscardFrame,
)
from .metrics import MetricsBook
from .processors import FrameProcessor

logger = logging.getLogger(__name__)


@dataclass
class _Segment:
    pcm: np.ndarray  # int16 at the output rate
    chunk: TTSChunk | None  # what the renderer gets, with text and timings
    pos: int = 0


@dataclass
class _Reply:
    reply_id: int
    inference_id: str = ""
    turn_idx: int = 0
    kind: ReplyKind = "reply"
    interruptible: bool = True
    committed: bool = False
    generation_done: bool = False
    error: str = ""
    segments: collections.deque[_Segment] = field(default_factory=collections.deque)
    done_segments: list[_Segment] = field(default_factory=list)
    played_samples: int = 0
    speaking: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)  # awaiting the commit
    finished: bool = False
    committed_at: float | None = None  # clock time the turn was decided
    thinking_sent: bool = False

    @property
    def queued_samples(self) -> int:
        return sum(len(s.pcm) - s.pos for s in self.segments)


def played_text(chunk: TTSChunk, played_ms: float) -> str:
    """The words of ``chunk`` whose middle lies within its first ``played_ms``."""
    if played_ms <= 0:
        return ""
    if played_ms >= chunk.duration_ms:
        return chunk.text.strip()
    words = [w for w in chunk.words if (w.start_ms + w.end_ms) / 2 <= played_ms]
    if chunk.words:
        if not words:
            return ""
        last = words[-1]
        if last.char_start >= 0 and chunk.text:
            end = last.char_start + last.char_len
            while end < len(chunk.text) and not chunk.text[end].isspace():
                end += 1  # the word's own punctuation ("there,") goes with it
            return chunk.text[:end].strip()
        return " ".join(w.word for w in words)
    # no timings: assume the words are spread evenly over the audio
    tokens = chunk.text.split()
    n = int(len(tokens) * played_ms / max(chunk.duration_ms, 1.0))
    return " ".join(tokens[:n])


_OPENS = ("(", "[", "{", "\u201c", "\u2018")
_CLOSES = (")", "]", "}", ",", ".", "!", "?", ";", ":", "\u201d", "\u2019")


def join_spoken(parts: list[str]) -> str:
    """The chunks' texts as one line. A voice may cut a sentence inside brackets ("Welcome, [" +
    "Name]!"): no space goes after an opening bracket or before closing punctuation."""
    out = ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and not out.endswith(_OPENS) and not part.startswith(_CLOSES):
            out += " "
        out += part
    return out


class AudioOutputProcessor(FrameProcessor):
    """Last processor: holds the reply audio for the transport to pull (``read_audio``)."""

    def __init__(self, *, sample_rate: int, emitter: EventEmitter, metrics: MetricsBook,
                 context: ConversationContext, clock: Clock, renderer: FaceRenderer | None = None,
                 max_buffer_s: float = 120.0) -> None:
        super().__init__(name="output")
        self.sample_rate = sample_rate
        self.emitter = emitter
        self.metrics = metrics
        self.context = context
        self.clock = clock
        self.renderer = renderer
        self.max_buffer_samples = int(max_buffer_s * sample_rate)
        self._replies: collections.deque[_Reply] = collections.deque()
        self._by_id: dict[int, _Reply] = {}
        self._resamplers: dict[int, StreamResampler] = {}
        self._space = asyncio.Event()
        self._space.set()
        #: samples handed out by read_audio (silence included): the output's pipeline time
        self.pulled_samples = 0
        #: samples of reply audio handed out
        self.played_samples = 0
        self.on_first_audio: list = []  # callbacks(reply_id) for tests/benchmarks

    # ------------------------------------------------------------------ state for the user side
    @property
    def replica_active(self) -> bool:
        return any(r.committed and not r.finished for r in self._replies)

    @property
    def replica_interruptible(self) -> bool:
        return all(r.interruptible for r in self._replies if r.committed and not r.finished)

    @property
    def replica_speaking(self) -> bool:
        return bool(self._replies) and self._replies[0].speaking

    @property
    def pulled_ms(self) -> float:
        return 1000.0 * self.pulled_samples / self.sample_rate

    @property
    def queued_ms(self) -> float:
        return 1000.0 * sum(r.queued_samples for r in self._replies) / self.sample_rate

    # ------------------------------------------------------------------ frames
    def _reply(self, reply_id: int | None, *, create: bool = False) -> _Reply | None:
        if reply_id is None:
            return None
        r = self._by_id.get(reply_id)
        if r is None and create:
            r = _Reply(reply_id)
            self._by_id[reply_id] = r
            self._replies.append(r)
        return r

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, ReplyStartFrame):
            r = self._reply(frame.reply_id, create=True)
            assert r is not None
            r.inference_id, r.kind, r.interruptible = frame.inference_id, frame.kind, frame.interruptible
            if not r.committed:
                r.turn_idx = frame.turn_idx
        elif isinstance(frame, TTSAudioFrame):
            await self._enqueue(frame.reply_id, frame.chunk.pcm, frame.chunk.sample_rate, frame.chunk)
        elif isinstance(frame, OutputAudioFrame):
            chunk = TTSChunk(pcm=np.asarray(frame.pcm, np.int16), sample_rate=frame.sample_rate)
            await self._enqueue(frame.reply_id, chunk.pcm, frame.sample_rate, chunk)
        elif isinstance(frame, ToolCallFrame):
            r = self._reply(frame.reply_id)
            if r is not None:
                if r.committed:
                    self._emit_tool_call(r, frame.call)
                else:
                    r.tool_calls.append(frame.call)
        elif isinstance(frame, ReplyEndFrame):
            r = self._reply(frame.reply_id)
            if r is not None:
                r.generation_done = True
                r.error = frame.error
                self._advance_silent()
        elif isinstance(frame, TurnCommitFrame):
            r = self._reply(frame.reply_id, create=True)
            assert r is not None
            r.committed = True
            r.committed_at = self.clock.monotonic()
            r.turn_idx = frame.turn_idx
            r.inference_id = r.inference_id or frame.inference_id
            for call in r.tool_calls:
                self._emit_tool_call(r, call)
            r.tool_calls.clear()
        elif isinstance(frame, TurnDiscardFrame):
            r = self._by_id.pop(frame.reply_id, None)
            if r is not None:
                self._replies.remove(r)
                self._resamplers.pop(frame.reply_id, None)
                self._space.set()
        elif isinstance(frame, InterruptionFrame):
            self.interrupt()
        elif isinstance(frame, CancelFrame):
            self._replies.clear()
            self._by_id.clear()
            self._space.set()
        # the end of the chain: nothing to push to

    async def _enqueue(self, reply_id: int | None, pcm: np.ndarray, rate: int,
                       chunk: TTSChunk) -> None:
        r = self._reply(reply_id)
        if r is None or r.finished:
            return  # its reply was interrupted or discarded
        while self._buffered_samples() >= self.max_buffer_samples:
            self._space.clear()
            await self._space.wait()
        if rate != self.sample_rate:
            rs = self._resamplers.get(r.reply_id)
            if rs is None or rs.src_rate != rate:
                rs = self._resamplers[r.reply_id] = StreamResampler(rate, self.sample_rate)
            x = pcm.astype(np.float32) / 32768.0
            out = float_to_int16(rs.process(x))
        else:
            out = np.asarray(pcm, np.int16).copy()
        if r is not self._by_id.get(r.reply_id) or r.finished:
            return
        r.segments.append(_Segment(out, chunk))

    def _buffered_samples(self) -> int:
        return sum(r.queued_samples for r in self._replies)

    def _emit_tool_call(self, r: _Reply, call: ToolCall) -> None:
        self.emitter.emit(ToolCallRequested(tool_call_id=call.id, tool_name=call.name, arguments=call.arguments,
                                            inference_id=r.inference_id, turn_idx=r.turn_idx))

    # ------------------------------------------------------------------ playout
    def read_audio(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of reply audio (int16 mono at ``sample_rate``), silence where
        there is none. Never blocks; the caller's clock paces the pipeline's output."""
        out = np.zeros(n_samples, np.int16)
        filled = 0
        self._check_thinking()
        while filled < n_samples and self._replies:
            r = self._replies[0]
            if not r.committed:
                break  # a speculative reply is not heard before its turn is decided
            if not r.segments:
                if r.generation_done:
                    self._finish(r, interrupted=False)
                    continue
                break  # the reply is still being generated
            seg = r.segments[0]
            if seg.pos == 0:
                self._on_segment_start(r, seg)
            take = min(n_samples - filled, len(seg.pcm) - seg.pos)
            out[filled:filled + take] = seg.pcm[seg.pos:seg.pos + take]
            seg.pos += take
            filled += take
            r.played_samples += take
            self.played_samples += take
            if seg.pos >= len(seg.pcm):
                r.done_segments.append(r.segments.popleft())
        self.pulled_samples += n_samples
        self._space.set()
        return out

    def _check_thinking(self) -> None:
        """``conversation.replica.thinking`` once per reply whose first audio is late."""
        if not self._replies:
            return
        r = self._replies[0]
        if (r.committed and not r.speaking and not r.thinking_sent and r.kind == "reply"
                and r.committed_at is not None
                and self.clock.monotonic() - r.committed_at >= THINKING_AFTER_S):
            r.thinking_sent = True
            self.emitter.emit(ReplicaThinking(waited_ms=round(1000 * (self.clock.monotonic() - r.committed_at)),
                                              inference_id=r.inference_id, turn_idx=r.turn_idx))

    def _advance_silent(self) -> None:
        """Finish replies at the head that will never make a sound (e.g. only a tool call),
        without waiting for the next pull."""
        while self._replies:
            r = self._replies[0]
            if r.committed and r.generation_done and not r.segments and not r.speaking:
                self._finish(r, interrupted=False)
            else:
                break

    def _on_segment_start(self, r: _Reply, seg: _Segment) -> None:
        if not r.speaking:
            r.speaking = True
            self.metrics.mark(r.reply_id, "first_audio_played")
            self.emitter.emit(ReplicaStartedSpeaking(inference_id=r.inference_id, turn_idx=r.turn_idx))
            for cb in self.on_first_audio:
                cb(r.reply_id)
        if seg.chunk is not None and seg.chunk.text:
            so_far = self._spoken_text(r, include_current=True)
            self.emitter.emit(UtteranceStreaming(role="replica", speech=so_far, final=False,
                                                 inference_id=r.inference_id, turn_idx=r.turn_idx))
        if self.renderer is not None and seg.chunk is not None:
            try:
                self.renderer.push_audio(seg.chunk)
            except Exception:  # noqa: BLE001 - a face glitch must not stop the voice
                logger.exception("[%s] renderer.push_audio failed", self.emitter.conversation_id)

    def _spoken_text(self, r: _Reply, *, include_current: bool = False) -> str:
        parts = [s.chunk.text.strip() for s in r.done_segments if s.chunk is not None and s.chunk.text]
        head = r.segments[0] if r.segments else None
        if head is not None and head.chunk is not None:
            if include_current:
                parts.append(head.chunk.text.strip())
            elif head.pos > 0:
                parts.append(played_text(head.chunk, 1000.0 * head.pos / self.sample_rate))
        return join_spoken(parts)

    def _finish(self, r: _Reply, *, interrupted: bool) -> None:
        if r.finished:
            return
        r.finished = True
        if self._replies and self._replies[0] is r:
            self._replies.popleft()
        elif r in self._replies:
            self._replies.remove(r)
        self._by_id.pop(r.reply_id, None)
        self._resamplers.pop(r.reply_id, None)
        text = self._spoken_text(r)
        if r.speaking:
            duration = round(r.played_samples / self.sample_rate, 3)
            ids = {"inference_id": r.inference_id, "turn_idx": r.turn_idx}
            self.emitter.emit(UtteranceStreaming(role="replica", speech=text, final=True, is_interrupted=interrupted, **ids))
            self.emitter.emit(ReplicaStoppedSpeaking(duration=duration, interrupted=interrupted, **ids))
            self.emitter.emit(Utterance(role="replica", speech=text, **ids))
        if interrupted and r.committed:
            self.context.set_played(r.reply_id, text)
        self.metrics.update(r.reply_id, interrupted=interrupted)
        m = self.metrics.close(r.reply_id)
        if m is not None and r.committed:
            self.emitter.emit(TurnMetricsReady(metrics=m, inference_id=r.inference_id, turn_idx=r.turn_idx))

    def interrupt(self) -> None:
        """Stop every reply now (the next pull is silence); keep what was played."""
        replies = list(self._replies)
        for r in replies:
            if r.committed or r.speaking:
                self._finish(r, interrupted=True)
            else:
                self._by_id.pop(r.reply_id, None)
        self._replies.clear()
        self._by_id.clear()
        self._resamplers.clear()
        self._space.set()
        if self.renderer is not None:
            try:
                self.renderer.clear()
            except Exception:  # noqa: BLE001
                logger.exception("[%s] renderer.clear failed", self.emitter.conversation_id)
