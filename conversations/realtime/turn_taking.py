"""The user's side: turn-taking, speculative transcription and barge-in.

:class:`UserTurnProcessor` is the first processor of the pipeline. It takes mic audio
(float32, 16 kHz, any frame size), runs the VAD on 512-sample chunks (segmenter.py) and
decides, all in *input-audio time* (samples pushed, not wall time, so a test that pushes
audio faster than real time gets the same decisions):

- speech start / pause: a voiced run of ``START_CHUNKS`` starts speech; a silence of
  ``FlowConfig.speculative_pause_ms`` is a pause (``user.started_speaking`` /
  ``user.stopped_speaking`` events).
- at a pause it transcribes the turn so far and, in parallel, asks the end-of-turn model
  (Smart Turn) whether the user sounds finished. :func:`judge_turn` combines the two (the
  transcript, judged by completeness.py, is a second opinion, and the only judge where the
  model is absent) and picks the silence that ends the turn from the patience table
  (config.py). With an STT engine that continues text (Whisper), a turn is transcribed
  piece by piece: the transcript made at a pause the user talked through is kept, and a
  long stretch of speech is transcribed up to a short gap while the user goes on, so at the
  end only the tail is new.
  With ``speculative_inference`` the transcript goes to the LLM
  at once as a *speculative* reply; if the user goes on, a :class:`TurnDiscardFrame` throws
  it away; if the silence becomes the end of the turn, a :class:`TurnCommitFrame` lets the
  reply (often already synthesised) be heard.
- speech while the replica is answering is an interruption candidate: it interrupts only
  once it has lasted ``InterruptPolicy.min_speech_ms`` and its transcript has enough words
  that are not backchannels (or it lasted ``force_ms``). A segment that never qualifies is
  a backchannel and is dropped. The greeting is never interruptible. Once interrupted, the
  segment is the user's next turn, from its first syllable.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .clock import Clock
from .completeness import (
    HALLUCINATIONS,
    Completeness,
    assess_completeness,
    clean_transcript,
    count_content_words,
    join_text,
)
from .config import FlowConfig, TurnWaits
from .engines.base import SpeechToText, TurnModel, VoiceActivityDetector
from .events import (
    USER_STARTED,
    USER_STOPPED,
    UTTERANCE,
    UTTERANCE_STREAMING,
    EventEmitter,
    MetricsBook,
)
from .frames import (
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    TurnCommitFrame,
    TurnDiscardFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTranscriptFrame,
)
from .processors import FrameProcessor, error_frame_from
from .segmenter import CHUNK_MS, MAX_TURN_MS, MIN_TURN_VOICED_MS, SAMPLE_RATE, VadSegmenter
from .wake import WakeGate

logger = logging.getLogger(__name__)

RECHECK_MS = 300  # re-run the interruption transcript check after this much more speech
STT_TIMEOUT_S = 20.0
#: the shortest piece of a turn transcribed on its own. Whisper's window is >= 8 s (stt.py), so
#: a shorter turn costs the same to transcribe whole again, and a piece decoded without the
#: sound that follows it is heard worse (measured: "two people tonight" alone came out as "to
#: be able to hide"; a 14 s turn cut at every pause had 3x the word errors of one decode)
PREFIX_MIN_MS = 6700
#: speech going on this long without a pause is transcribed up to its latest gap meanwhile
EXTEND_AFTER_MS = 10_000


# ---------------------------------------------------------------------------- turn policy
def judge_turn(transcript: Completeness, p_complete: float | None, waits: TurnWaits, *,
               smart: bool = True) -> Completeness:
    """How complete the turn is, from the transcript's completeness and the end-of-turn
    model's P(complete) (None: no model for this call or language, or it failed).

    The transcript vetoes an unfinished thought ("... and", "to the", a trailing comma)
    whatever the voice did; otherwise the model decides at the patience's threshold. Words
    that sound finished (a question, a statement ending on a content word) lower that bar to
    a quarter: the model hears a flat or synthetic voice poorly (on eSpeak NG it gave 0.01-0.3
    to a third of plain questions), and a clear "not yet" from it still wins."""
    if not smart:
        return Completeness.NEUTRAL
    if p_complete is None or transcript is Completeness.INCOMPLETE:
        return transcript
    if p_complete >= waits.threshold:
        return Completeness.COMPLETE
    if transcript is Completeness.COMPLETE:
        return Completeness.COMPLETE if p_complete >= waits.threshold / 4 else Completeness.NEUTRAL
    return Completeness.INCOMPLETE


def turn_wait_ms(waits: TurnWaits, completeness: Completeness | None, *, smart: bool = True) -> int:
    if not smart or completeness is None or completeness is Completeness.NEUTRAL:
        return waits.neutral_ms
    if completeness is Completeness.COMPLETE:
        return waits.complete_ms
    return waits.incomplete_ms


# ---------------------------------------------------------------------------- processor
class PlaybackState(Protocol):
    """What the user side needs to know about the replica (the output processor)."""

    @property
    def replica_active(self) -> bool:
        """A committed reply is being generated or played."""

    @property
    def replica_interruptible(self) -> bool:
        """Every active reply may be interrupted by the user's speech."""

    @property
    def replica_speaking(self) -> bool:
        """The reply at the head is being heard (its first audio has played)."""


@dataclass
class TurnCounter:
    """turn_idx of the session: 0 for the greeting, +1 per user turn or respond."""

    value: int = 0
    _reply_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_reply_id(self) -> int:
        return next(self._reply_ids)

    def advance(self) -> int:
        self.value += 1
        return self.value


@dataclass
class _Attempt:
    """One transcription of the turn so far, started at a pause."""

    reply_id: int
    inference_id: str
    samples: int  # turn audio length it covers
    task: asyncio.Task[None] | None = None
    done: bool = False
    text: str = ""
    completeness: Completeness | None = None
    p_complete: float | None = None
    turn_model_ms: float | None = None
    stt_ms: float | None = None
    transcript_time: float | None = None
    speculative_sent: bool = False
    failed: bool = False
    #: incremental transcription: the turn's audio before ``start`` was already transcribed
    #: as ``before``; this attempt transcribed the rest as ``tail_text``
    start: int = 0
    before: str = ""
    tail_text: str = ""


@dataclass
class _Segment:
    """A stretch of user speech (with its pauses) that may become a turn."""

    start_sample: int
    chunks: list[np.ndarray]
    overlap: bool  # began while the replica was answering
    promoted: bool = False  # an overlap that interrupted (or outlasted) the replica
    voiced_ms: float = 0.0
    voiced_after_replica_ms: float = 0.0
    last_voiced_sample: int = 0
    last_voiced_time: float = 0.0
    attempt: _Attempt | None = None
    check_task: asyncio.Task[None] | None = None
    checked_at_voiced_ms: float = -1e9
    force_commit: bool = False
    n_samples: int = 0
    #: the user spoke again while a reply was pending (committed, not heard yet): this segment
    #: is a turn candidate, and its commit replaces that reply with one for both turns
    supersedes: bool = False
    #: audio [0, prefix_samples) is transcribed as prefix_text (incremental transcription)
    prefix_samples: int = 0
    prefix_text: str = ""
    #: a transcription that will extend the prefix when it finishes
    prefix_task: asyncio.Task[None] | None = None
    #: end of the latest gap in the voice (a safe cut between words)
    gap_sample: int = 0

    def __post_init__(self) -> None:
        self.n_samples = sum(len(c) for c in self.chunks)

    def append(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk)
        self.n_samples += len(chunk)

    @property
    def candidate(self) -> bool:
        return not self.overlap or self.promoted

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)



class UserTurnProcessor(FrameProcessor):
    """VAD + turn-taking + STT. Audio stops here; transcripts and system frames go on."""

    flush_on_interruption = False  # the user's audio is not the replica's to throw away

    def __init__(
        self,
        *,
        vad: VoiceActivityDetector,
        stt: SpeechToText | None,
        flow: FlowConfig,
        emitter: EventEmitter,
        metrics: MetricsBook,
        playback: PlaybackState,
        turns: TurnCounter,
        clock: Clock,
        language_code: str | None = "en",
        hotwords: str = "",
        speculative: bool = True,
        turns_enabled: bool = True,
        max_audio_ms: float = 200.0,
        turn_model: TurnModel | None = None,
        wake: WakeGate | None = None,
    ) -> None:
        super().__init__(name="user_turn", max_audio_ms=max_audio_ms, queue_size=512)
        #: wake/sleep phrases: which turns are answered, and what may interrupt (None: all)
        self.wake = wake
        self._vad = VadSegmenter(vad)
        self.stt = stt
        self.turn_model = turn_model
        self.incremental = bool(stt is not None and stt.continues_text)
        self.flow = flow
        self.emitter = emitter
        self.metrics = metrics
        self.playback = playback
        self.turns = turns
        self.clock = clock
        self.language_code = language_code
        self.hotwords = hotwords or None
        self.speculative = speculative
        # echo mode: no STT/LLM, so no turns and no interruption by speech
        self.turns_enabled = turns_enabled and stt is not None
        self._speaking = False
        self._segment: _Segment | None = None
        #: observable counters (tests, stats)
        self.interruptions = 0
        self.backchannels = 0
        self.turns_committed = 0
        self.vad_probabilities = self._vad.probabilities
        self.on_interrupt: Callable[[], None] | None = None

    # ------------------------------------------------------------------ public knobs
    def set_flow(self, flow: FlowConfig) -> None:
        self.flow = flow

    @property
    def audio_ms(self) -> float:
        """Input audio processed so far (the user side's pipeline time)."""
        return self._vad.audio_ms

    @property
    def user_speaking(self) -> bool:
        return self._speaking

    @property
    def in_segment(self) -> bool:
        """The user has spoken and the turn (or backchannel) is not settled yet."""
        return self._segment is not None

    # ------------------------------------------------------------------ frames
    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, InputAudioFrame):
            await self._on_audio(frame)
            return
        if isinstance(frame, InterruptionFrame) and frame.reason != "user":
            # an interruption we did not raise (client message) flushed any speculative
            # reply downstream: the next commit must send its transcript again
            seg = self._segment
            if seg is not None and seg.attempt is not None:
                seg.attempt.speculative_sent = False
        await self.push_frame(frame)

    async def _on_audio(self, frame: InputAudioFrame) -> None:
        for chunk in self._vad.chunks(frame.pcm, frame.arrival):
            await self._on_chunk(chunk)

    async def _on_chunk(self, chunk: np.ndarray) -> None:
        vad = self._vad
        voiced = vad.classify(chunk)
        seg = self._segment
        if seg is None:
            vad.keep_preroll(chunk)
            if voiced and vad.speech_start:
                pending = self._reply_pending()
                start_sample, preroll = vad.take_preroll()
                seg = _Segment(start_sample=start_sample, chunks=preroll,
                               overlap=self.turns_enabled and self.playback.replica_active and not pending,
                               supersedes=pending)
                seg.voiced_ms = CHUNK_MS * vad.voiced_run
                seg.last_voiced_sample = vad.sample
                seg.last_voiced_time = vad.chunk_time()
                self._segment = seg
                await self._set_speaking(True)
            return

        seg.append(chunk)
        if seg.supersedes and not seg.overlap and self.playback.replica_speaking:
            # the pending reply started to play while the user talks: from now on this is
            # speech over the replica, and the barge-in rules decide
            seg.supersedes = False
            seg.overlap = True
        if voiced:
            seg.voiced_ms += CHUNK_MS
            seg.last_voiced_sample = vad.sample
            seg.last_voiced_time = vad.chunk_time()
        elif vad.at_gap:
            seg.gap_sample = vad.sample - seg.start_sample
        if not self._speaking and voiced and vad.speech_start:
            await self._set_speaking(True)
            if seg.attempt is not None:
                # the user went on: the pause was not the end (its transcript is kept)
                await self._drop_attempt(seg, went_on=True)
        if self._speaking and self.incremental and seg.candidate:
            self._maybe_extend_prefix(seg)
        silence_ms = self._silence_ms(seg)
        if self._speaking and silence_ms >= self.flow.speculative_pause_ms:
            await self._set_speaking(False)

        if not self.turns_enabled:
            # echo mode: speaking events only
            if not self._speaking and silence_ms >= self.flow.waits.neutral_ms:
                self._segment = None
            return

        if seg.overlap and not seg.promoted:
            await self._overlap_step(seg, voiced, silence_ms)
            if not seg.promoted:
                return
        await self._turn_step(seg, silence_ms)

    def _reply_pending(self) -> bool:
        """A reply is committed but not heard yet (still thinking) and may be replaced. Speech
        then is not a barge-in: the reply is kept unless the speech becomes a turn, and then
        one reply answers both turns (never a pending reply thrown away for a cough)."""
        p = self.playback
        return (self.turns_enabled and p.replica_active and p.replica_interruptible
                and not p.replica_speaking)

    def _silence_ms(self, seg: _Segment) -> float:
        return 1000.0 * (self._vad.sample - seg.last_voiced_sample) / SAMPLE_RATE

    async def _set_speaking(self, speaking: bool) -> None:
        if speaking == self._speaking:
            return
        self._speaking = speaking
        t_ms = self.audio_ms
        if speaking:
            self.emitter.emit(USER_STARTED, {}, turn_idx=self.turns.value)
            await self.push_frame(UserStartedSpeakingFrame(t_ms=t_ms))
        else:
            self.emitter.emit(USER_STOPPED, {}, turn_idx=self.turns.value)
            await self.push_frame(UserStoppedSpeakingFrame(t_ms=t_ms))

    # ------------------------------------------------------------------ barge-in
    async def _overlap_step(self, seg: _Segment, voiced: bool, silence_ms: float) -> None:
        policy = self.flow.interrupt_policy
        # an agent waiting for its wake phrase is interrupted only by words that contain it
        needs_phrase = self.wake is not None and self.wake.asleep
        if self.playback.replica_active:
            if self.playback.replica_interruptible:
                if needs_phrase:
                    if seg.voiced_ms >= policy.min_speech_ms:
                        self._maybe_check_words(seg)
                elif policy.force_ms and seg.voiced_ms >= policy.force_ms:
                    await self._interrupt(seg)
                    return
                elif seg.voiced_ms >= policy.min_speech_ms:
                    if policy.min_words <= 0:
                        await self._interrupt(seg)
                        return
                    self._maybe_check_words(seg)
        else:
            # the replica finished while this segment went on: enough speech after that
            # makes it a turn of its own (a trailing "mm-hm" does not)
            if voiced:
                seg.voiced_after_replica_ms += CHUNK_MS
            if seg.voiced_after_replica_ms >= max(policy.min_speech_ms, 300):
                seg.promoted = True
                return
        if not self._speaking and silence_ms >= self.flow.waits.neutral_ms:
            # a backchannel (or speech over the greeting) that never took the turn
            self.backchannels += 1
            await self._drop_segment(seg)

    def _maybe_check_words(self, seg: _Segment) -> None:
        if seg.check_task is not None and not seg.check_task.done():
            return
        if seg.voiced_ms - seg.checked_at_voiced_ms < RECHECK_MS:
            return
        seg.checked_at_voiced_ms = seg.voiced_ms
        seg.check_task = self.create_task(self._check_words(seg, seg.audio()),
                                          name="user_turn.barge_in_check")

    async def _check_words(self, seg: _Segment, audio: np.ndarray) -> None:
        try:
            tr = await self._transcribe(audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed check just does not interrupt
            logger.warning("[%s] barge-in transcript failed: %s", self.emitter.conversation_id, exc)
            return
        words = count_content_words(tr.text)
        logger.debug("barge-in check %r -> %d words", tr.text, words)
        if (self._segment is seg and not seg.promoted and self.playback.replica_active
                and self.playback.replica_interruptible
                and words >= self.flow.interrupt_policy.min_words
                and (self.wake is None or self.wake.admits_barge_in(tr.text))):
            await self._interrupt(seg)

    async def _interrupt(self, seg: _Segment) -> None:
        seg.promoted = True
        self.interruptions += 1
        logger.info("[%s] barge-in after %.0f ms of speech", self.emitter.conversation_id,
                    seg.voiced_ms)
        if self.on_interrupt is not None:
            self.on_interrupt()
        await self.push_frame(InterruptionFrame(reason="user"))

    # ------------------------------------------------------------------ turn end
    async def _turn_step(self, seg: _Segment, silence_ms: float) -> None:
        if not seg.force_commit and seg.n_samples >= MAX_TURN_MS * SAMPLE_RATE / 1000:
            seg.force_commit = True
            if seg.attempt is not None:
                await self._drop_attempt(seg)
        if self._speaking and not seg.force_commit:
            return
        if seg.attempt is None:
            if silence_ms >= self.flow.speculative_pause_ms or seg.force_commit:
                self._start_attempt(seg)
            return
        await self._maybe_commit(seg)

    def _start_attempt(self, seg: _Segment) -> None:
        audio = seg.audio()
        attempt = _Attempt(reply_id=self.turns.next_reply_id(), inference_id=uuid.uuid4().hex,
                           samples=len(audio))
        seg.attempt = attempt
        attempt.task = self.create_task(self._analyse(seg, attempt, audio), name="user_turn.stt")

    # ------------------------------------------------------------------ incremental transcript
    def _maybe_extend_prefix(self, seg: _Segment) -> None:
        """While the user talks on, transcribe the turn up to its latest gap once the part not
        transcribed yet is long: at the end of the turn only the tail is left."""
        if seg.prefix_task is not None or seg.attempt is not None:
            return
        untranscribed_ms = 1000.0 * (seg.n_samples - seg.prefix_samples) / SAMPLE_RATE
        cut = seg.gap_sample
        if untranscribed_ms < EXTEND_AFTER_MS or 1000.0 * (cut - seg.prefix_samples) / SAMPLE_RATE < PREFIX_MIN_MS:
            return
        audio = seg.audio()[seg.prefix_samples:cut]
        seg.prefix_task = self.create_task(self._extend_prefix(seg, audio, cut, seg.prefix_text),
                                           name="user_turn.stt_prefix")

    async def _extend_prefix(self, seg: _Segment, audio: np.ndarray, end: int, before: str) -> None:
        try:
            tr = await self._transcribe(audio, previous_text=before)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the turn is then transcribed whole at its end
            logger.warning("[%s] partial transcript failed: %s", self.emitter.conversation_id, exc)
            return
        finally:
            if seg.prefix_task is asyncio.current_task():
                seg.prefix_task = None
        self._adopt_prefix(seg, end, before, clean_transcript(tr.text))

    @staticmethod
    def _adopt_prefix(seg: _Segment, end: int, before: str, text: str) -> None:
        if seg.prefix_text != before or end <= seg.prefix_samples:
            return  # another piece got there first
        if 1000.0 * (end - seg.prefix_samples) / SAMPLE_RATE < PREFIX_MIN_MS:
            return  # too short to be worth a piece of its own
        seg.prefix_samples = end
        seg.prefix_text = join_text(before, text)

    async def _settled_prefix(self, seg: _Segment) -> None:
        """Wait for a piece of the turn still being transcribed (its result is the prefix)."""
        task = seg.prefix_task
        if task is not None and not task.done():
            try:
                await asyncio.shield(task)
            except Exception:  # noqa: BLE001 - the piece failed: the turn is transcribed whole
                pass

    async def _turn_probability(self, audio: np.ndarray, attempt: _Attempt) -> float | None:
        """P(turn complete) from the end-of-turn model, or None (no model, or it failed)."""
        model = self.turn_model
        if model is None or not self.flow.smart_turn:
            return None
        t0 = self.clock.monotonic()
        try:
            async with asyncio.timeout(STT_TIMEOUT_S):
                p = await model.probability(audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the transcript alone judges this turn
            logger.warning("[%s] end-of-turn model failed: %s", self.emitter.conversation_id, exc)
            return None
        attempt.turn_model_ms = 1000.0 * (self.clock.monotonic() - t0)
        return p

    async def _analyse(self, seg: _Segment, attempt: _Attempt, audio: np.ndarray) -> None:
        turn_task = asyncio.ensure_future(self._turn_probability(audio, attempt))
        try:
            if self.incremental:
                await self._settled_prefix(seg)
                attempt.before, attempt.start = seg.prefix_text, seg.prefix_samples
            t0 = self.clock.monotonic()
            tr = await self._transcribe(audio[attempt.start:], previous_text=attempt.before)
            p_complete = await turn_task
        except asyncio.CancelledError:
            turn_task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - an engine failure ends this turn cleanly
            turn_task.cancel()
            if seg.prefix_task is asyncio.current_task():
                seg.prefix_task = None  # a pause's transcript adopted as the prefix failed
            if seg.attempt is not attempt:
                return
            attempt.failed = True
            attempt.done = True
            err = error_frame_from(exc, reply_id=attempt.reply_id)
            self.emitter.error(err.message, engine=err.engine or "stt", code=err.code,
                               turn_idx=self.turns.value)
            await self.push_frame(err)
            if self._segment is seg:
                await self._drop_segment(seg)
            return
        attempt.tail_text = clean_transcript(tr.text)
        if seg.attempt is not attempt:
            if seg.prefix_task is asyncio.current_task():
                # the user went on after this pause: its transcript is the turn's prefix
                seg.prefix_task = None
                self._adopt_prefix(seg, attempt.samples, attempt.before, attempt.tail_text)
            return
        attempt.done = True
        attempt.text = join_text(attempt.before, attempt.tail_text)
        if (attempt.text.lower() in HALLUCINATIONS and seg.voiced_ms < 500) or not any(
                ch.isalnum() for ch in attempt.text):
            attempt.text = ""
        language = self.language_code or tr.language
        if self.turn_model is None or language not in self.turn_model.languages:
            p_complete = None
        attempt.p_complete = p_complete
        attempt.completeness = judge_turn(assess_completeness(attempt.text, language), p_complete,
                                          self.flow.waits, smart=self.flow.smart_turn)
        attempt.stt_ms = tr.elapsed_ms or 1000.0 * (self.clock.monotonic() - t0)
        attempt.transcript_time = self.clock.monotonic()
        logger.debug("[%s] pause transcript %r (%s, P(complete) %s)", self.emitter.conversation_id,
                     attempt.text, attempt.completeness.value, p_complete)
        if attempt.text:
            self.metrics.open(attempt.reply_id, attempt.inference_id, self.turns.value + 1,
                              speech_end=seg.last_voiced_time)
            self.emitter.emit(UTTERANCE_STREAMING,
                              {"role": "user", "speech": attempt.text, "final": False,
                               "is_interrupted": False},
                              inference_id=attempt.inference_id, turn_idx=self.turns.value + 1)
            if self.speculative and not seg.force_commit and (
                    self.wake is None or self.wake.would_answer(attempt.text)):
                attempt.speculative_sent = True
                self.metrics.update(attempt.reply_id, speculative=True)
                await self.push_frame(UserTranscriptFrame(
                    reply_id=attempt.reply_id, text=attempt.text,
                    inference_id=attempt.inference_id, turn_idx=self.turns.value + 1,
                    speculative=True, language=tr.language))
        if self._segment is seg:
            await self._maybe_commit(seg)

    async def _transcribe(self, audio: np.ndarray, *, previous_text: str = ""):  # -> Transcript
        assert self.stt is not None
        extra = {"previous_text": previous_text} if previous_text else {}
        async with asyncio.timeout(STT_TIMEOUT_S):
            return await self.stt.transcribe(audio, language=self.language_code,
                                             hotwords=self.hotwords, **extra)

    async def _maybe_commit(self, seg: _Segment) -> None:
        attempt = seg.attempt
        if attempt is None or not attempt.done or attempt.failed:
            return
        if self._speaking and not seg.force_commit:
            return
        if not attempt.text or seg.voiced_ms < MIN_TURN_VOICED_MS:
            await self._drop_segment(seg)  # noise, a cough, nothing said
            return
        wait = turn_wait_ms(self.flow.waits, attempt.completeness, smart=self.flow.smart_turn)
        if not seg.force_commit and self._silence_ms(seg) < wait:
            return
        await self._commit(seg, attempt)

    async def _commit(self, seg: _Segment, attempt: _Attempt) -> None:
        self._segment = None
        if self.wake is not None and not self.wake.admit(attempt.text, turn_idx=self.turns.value + 1,
                                                         inference_id=attempt.inference_id):
            await self._commit_unanswered(seg, attempt)
            return
        if seg.supersedes and self.playback.replica_active:
            # the reply to the previous turn was not heard yet: it is regenerated for both
            # turns together (the history keeps the previous user turn; consecutive user
            # turns are merged), so nothing the user said goes unanswered
            logger.info("[%s] the user spoke again before the reply was heard: one reply for both turns",
                        self.emitter.conversation_id)
            await self.push_frame(InterruptionFrame(reason="superseded"))
            attempt.speculative_sent = False  # the interruption flushed it downstream
        turn_idx = self.turns.advance()
        self.turns_committed += 1
        if self.metrics.get(attempt.reply_id) is None:
            self.metrics.open(attempt.reply_id, attempt.inference_id, turn_idx,
                              speech_end=seg.last_voiced_time)
        self.metrics.update(attempt.reply_id, turn_idx=turn_idx, stt_ms=attempt.stt_ms,
                            transcript_final=attempt.transcript_time,
                            turn_judgement="forced" if seg.force_commit else (
                                attempt.completeness.value if attempt.completeness else ""),
                            turn_p=attempt.p_complete, turn_model_ms=attempt.turn_model_ms)
        self.metrics.mark(attempt.reply_id, "turn_decided")
        logger.info("[%s] turn %d: %r", self.emitter.conversation_id, turn_idx, attempt.text)
        self.emitter.emit(UTTERANCE_STREAMING,
                          {"role": "user", "speech": attempt.text, "final": True,
                           "is_interrupted": False},
                          inference_id=attempt.inference_id, turn_idx=turn_idx)
        self.emitter.emit(UTTERANCE, {"role": "user", "speech": attempt.text},
                          inference_id=attempt.inference_id, turn_idx=turn_idx)
        await self.push_frame(TurnCommitFrame(reply_id=attempt.reply_id,
                                              inference_id=attempt.inference_id,
                                              turn_idx=turn_idx, text=attempt.text))
        if not attempt.speculative_sent:
            await self.push_frame(UserTranscriptFrame(
                reply_id=attempt.reply_id, text=attempt.text, inference_id=attempt.inference_id,
                turn_idx=turn_idx, speculative=False))
        await self._cancel_check(seg)

    async def _commit_unanswered(self, seg: _Segment, attempt: _Attempt) -> None:
        """A turn the wake gate does not answer: it is the user's turn in the transcript, and
        nothing else (no reply, no history entry, no replica event)."""
        turn_idx = self.turns.advance()
        self.metrics.drop(attempt.reply_id)
        logger.info("[%s] turn %d not answered (no wake phrase): %r", self.emitter.conversation_id, turn_idx,
                    attempt.text)
        self.emitter.emit(UTTERANCE_STREAMING, {"role": "user", "speech": attempt.text, "final": True,
                                                "is_interrupted": False},
                          inference_id=attempt.inference_id, turn_idx=turn_idx)
        self.emitter.emit(UTTERANCE, {"role": "user", "speech": attempt.text},
                          inference_id=attempt.inference_id, turn_idx=turn_idx)
        if attempt.speculative_sent:  # (a guard: the gate only moves at commits, so the pause agreed)
            await self.push_frame(TurnDiscardFrame(reply_id=attempt.reply_id))
        await self._cancel_check(seg)

    async def _drop_attempt(self, seg: _Segment, *, went_on: bool = False) -> None:
        attempt, seg.attempt = seg.attempt, None
        if attempt is None:
            return
        task = attempt.task
        if went_on and self.incremental and not attempt.failed:
            # the transcript of the turn up to this pause is the prefix of the rest: keep the
            # transcription running (or its result) and adopt it
            if attempt.done:
                self._adopt_prefix(seg, attempt.samples, attempt.before, attempt.tail_text)
            elif task is not None and seg.prefix_task is None:
                seg.prefix_task = task
                task = None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        self.metrics.drop(attempt.reply_id)
        if attempt.speculative_sent:
            await self.push_frame(TurnDiscardFrame(reply_id=attempt.reply_id))

    async def _drop_segment(self, seg: _Segment) -> None:
        if self._segment is seg:
            self._segment = None
        prefix, seg.prefix_task = seg.prefix_task, None
        if prefix is not None and not prefix.done() and prefix is not asyncio.current_task():
            prefix.cancel()
        await self._drop_attempt(seg)
        await self._cancel_check(seg)

    async def _cancel_check(self, seg: _Segment) -> None:
        task = seg.check_task
        seg.check_task = None
        # a check that decided to interrupt (promoted) is passing the interruption down the
        # chain: cancelling it half-way would leave some processors unflushed
        if (task is not None and not task.done() and task is not asyncio.current_task()
                and not seg.promoted):
            task.cancel()

