"""The user's side of the pipeline: :class:`UserTurnProcessor`, which wires turn-taking,
transcription and barge-in to frames and events.

It is the first processor of the pipeline. It takes mic audio (float32, 16 kHz, any frame
size), runs the VAD on 512-sample chunks (segmenter.py) and decides, all in *input-audio
time* (samples pushed, not wall time, so a test that pushes audio faster than real time gets
the same decisions):

- speech start / pause: a voiced run of ``START_CHUNKS`` starts speech; a silence of
  ``FlowConfig.speculative_pause_ms`` is a pause (``user.started_speaking`` /
  ``user.stopped_speaking`` events). The speech, with its pauses, is a
  :class:`~.user_segment.Segment` until it is settled.
- at a pause the turn so far is transcribed and judged (turn_transcript.py); when it has
  been silent long enough for that judgement the turn is committed (turn_policy.py).
  With ``speculative_inference`` the transcript goes to the LLM at once as a *speculative*
  reply; if the user goes on, a :class:`TurnDiscardFrame` throws it away; if the silence
  becomes the end of the turn, a :class:`TurnCommitFrame` lets the reply (often already
  synthesised) be heard. A turn the wake gate does not answer (wake.py) is reported and
  goes no further.
- speech while the replica is answering is an interruption candidate (barge_in.py); once it
  interrupts, it is the user's next turn.

The transcription (:class:`~.turn_transcript.TurnTranscriber`) and barge-in
(:class:`~.barge_in.BargeIn`) helpers are the processor's: their tasks are its tasks, and
every frame and event of the user side goes out from here.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import numpy as np

from .barge_in import BargeIn
from .clock import Clock
from .config import FlowConfig
from .engines.base import SpeechToText, TurnModel, VoiceActivityDetector
from .events import EventEmitter, UserStartedSpeaking, UserStoppedSpeaking, UtteranceStreaming
from .metrics import MetricsBook
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
from .segmenter import CHUNK_MS, MAX_TURN_MS, SAMPLE_RATE, VadSegmenter
from .turn_policy import PlaybackState, TurnCounter, TurnDecision, decide_turn
from .turn_transcript import TurnTranscriber
from .user_segment import Attempt, Segment
from .wake import WakeGate

logger = logging.getLogger(__name__)


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
        self.flow = flow
        self.emitter = emitter
        self.metrics = metrics
        self.playback = playback
        self.turns = turns
        self.clock = clock
        self.speculative = speculative
        # echo mode: no STT/LLM, so no turns and no interruption by speech
        self.turns_enabled = turns_enabled and stt is not None
        self._speaking = False
        self._segment: Segment | None = None
        self.transcriber = TurnTranscriber(
            stt=stt, turn_model=turn_model, flow=lambda: self.flow, clock=clock,
            spawn=self.create_task, on_failure=self._stt_failed, conversation_id=emitter.conversation_id,
            language_code=language_code, hotwords=hotwords or None)
        self.barge_in = BargeIn(
            flow=lambda: self.flow, playback=playback, wake=wake, turns_enabled=self.turns_enabled,
            transcribe=self.transcriber.transcribe, spawn=self.create_task,
            current=lambda: self._segment, interrupt=self._interrupt_replica,
            drop=self._drop_segment, conversation_id=emitter.conversation_id)
        #: observable counters (tests, stats); interruptions and backchannels: barge_in
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

    @property
    def interruptions(self) -> int:
        return self.barge_in.interruptions

    @property
    def backchannels(self) -> int:
        return self.barge_in.backchannels

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
                overlap, supersedes = self.barge_in.speech_start()
                start_sample, preroll = vad.take_preroll()
                seg = Segment(start_sample=start_sample, chunks=preroll, overlap=overlap,
                              supersedes=supersedes)
                seg.voiced_ms = CHUNK_MS * vad.voiced_run
                seg.last_voiced_sample = vad.sample
                seg.last_voiced_time = vad.chunk_time()
                self._segment = seg
                await self._set_speaking(True)
            return

        seg.append(chunk)
        self.barge_in.follow_playback(seg)
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
        if self._speaking and self.transcriber.incremental and seg.candidate:
            self.transcriber.maybe_extend_prefix(seg)
        silence_ms = self._silence_ms(seg)
        if self._speaking and silence_ms >= self.flow.speculative_pause_ms:
            await self._set_speaking(False)

        if not self.turns_enabled:
            # echo mode: speaking events only
            if not self._speaking and silence_ms >= self.flow.waits.neutral_ms:
                self._segment = None
            return

        if seg.overlap and not seg.promoted:
            await self.barge_in.step(seg, voiced=voiced, silence_ms=silence_ms, speaking=self._speaking)
            if not seg.promoted:
                return
        await self._turn_step(seg, silence_ms)

    def _silence_ms(self, seg: Segment) -> float:
        return 1000.0 * (self._vad.sample - seg.last_voiced_sample) / SAMPLE_RATE

    async def _set_speaking(self, speaking: bool) -> None:
        if speaking == self._speaking:
            return
        self._speaking = speaking
        t_ms = self.audio_ms
        if speaking:
            self.emitter.emit(UserStartedSpeaking(turn_idx=self.turns.value))
            await self.push_frame(UserStartedSpeakingFrame(t_ms=t_ms))
        else:
            self.emitter.emit(UserStoppedSpeaking(turn_idx=self.turns.value))
            await self.push_frame(UserStoppedSpeakingFrame(t_ms=t_ms))

    async def _interrupt_replica(self) -> None:
        """Barge-in decided: the replica stops (the segment is the user's next turn)."""
        if self.on_interrupt is not None:
            self.on_interrupt()
        await self.push_frame(InterruptionFrame(reason="user"))

    # ------------------------------------------------------------------ turn end
    async def _turn_step(self, seg: Segment, silence_ms: float) -> None:
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

    def _start_attempt(self, seg: Segment) -> None:
        audio = seg.audio()
        attempt = Attempt(reply_id=self.turns.next_reply_id(), inference_id=uuid.uuid4().hex,
                          samples=len(audio))
        seg.attempt = attempt
        attempt.task = self.create_task(self._analyse(seg, attempt, audio), name="user_turn.stt")

    async def _analyse(self, seg: Segment, attempt: Attempt, audio: np.ndarray) -> None:
        """The pause's transcript: shown as a caption, sent ahead to the LLM (speculative),
        and the turn committed if the silence is already long enough."""
        tr = await self.transcriber.analyse(seg, attempt, audio)
        if tr is None:
            return  # the user went on after this pause, or the transcription failed
        if attempt.text:
            self.metrics.open(attempt.reply_id, attempt.inference_id, self.turns.value + 1,
                              speech_end=seg.last_voiced_time)
            self.emitter.emit(UtteranceStreaming(role="user", speech=attempt.text, final=False,
                                                 inference_id=attempt.inference_id, turn_idx=self.turns.value + 1))
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

    async def _stt_failed(self, seg: Segment, attempt: Attempt, exc: Exception) -> None:
        """An engine failed on the pause's transcript: reported, and the segment dropped."""
        err = error_frame_from(exc, reply_id=attempt.reply_id)
        self.emitter.error(err.message, engine=err.engine or "stt", code=err.code,
                           turn_idx=self.turns.value)
        await self.push_frame(err)
        if self._segment is seg:
            await self._drop_segment(seg)

    async def _maybe_commit(self, seg: Segment) -> None:
        decision = decide_turn(seg, speaking=self._speaking, silence_ms=self._silence_ms(seg),
                               flow=self.flow)
        if decision is TurnDecision.DROP:
            await self._drop_segment(seg)  # noise, a cough, nothing said
        elif decision is TurnDecision.COMMIT:
            assert seg.attempt is not None
            await self._commit(seg, seg.attempt)

    async def _commit(self, seg: Segment, attempt: Attempt) -> None:
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
        self.emitter.user_turn(attempt.text, inference_id=attempt.inference_id, turn_idx=turn_idx)
        await self.push_frame(TurnCommitFrame(reply_id=attempt.reply_id,
                                              inference_id=attempt.inference_id,
                                              turn_idx=turn_idx, text=attempt.text))
        if not attempt.speculative_sent:
            await self.push_frame(UserTranscriptFrame(
                reply_id=attempt.reply_id, text=attempt.text, inference_id=attempt.inference_id,
                turn_idx=turn_idx, speculative=False))
        self.barge_in.cancel_check(seg)

    async def _commit_unanswered(self, seg: Segment, attempt: Attempt) -> None:
        """A turn the wake gate does not answer: it is the user's turn in the transcript, and
        nothing else (no reply, no history entry, no replica event)."""
        turn_idx = self.turns.advance()
        self.metrics.drop(attempt.reply_id)
        logger.info("[%s] turn %d not answered (no wake phrase): %r", self.emitter.conversation_id, turn_idx,
                    attempt.text)
        self.emitter.user_turn(attempt.text, inference_id=attempt.inference_id, turn_idx=turn_idx)
        if attempt.speculative_sent:  # (a guard: the gate only moves at commits, so the pause agreed)
            await self.push_frame(TurnDiscardFrame(reply_id=attempt.reply_id))
        self.barge_in.cancel_check(seg)

    async def _drop_attempt(self, seg: Segment, *, went_on: bool = False) -> None:
        attempt, seg.attempt = seg.attempt, None
        if attempt is None:
            return
        self.transcriber.abandon(seg, attempt, went_on=went_on)
        self.metrics.drop(attempt.reply_id)
        if attempt.speculative_sent:
            await self.push_frame(TurnDiscardFrame(reply_id=attempt.reply_id))

    async def _drop_segment(self, seg: Segment) -> None:
        if self._segment is seg:
            self._segment = None
        self.transcriber.cancel_prefix(seg)
        await self._drop_attempt(seg)
        self.barge_in.cancel_check(seg)
