"""How a user turn is transcribed: at each pause, and piece by piece while the user talks on.

:class:`TurnTranscriber` is a helper of :class:`~.turn_taking.UserTurnProcessor`, which owns it
and runs its tasks. At a pause the processor starts an :class:`~.user_segment.Attempt`;
:meth:`TurnTranscriber.analyse` transcribes the turn so far and, in parallel, asks the
end-of-turn model (Smart Turn) for P(complete), then judges the turn (turn_policy.py). Every
engine call has a timeout (``STT_TIMEOUT_S``).

With an STT engine that continues text (Whisper, ``SpeechToText.continues_text``), a turn is
transcribed piece by piece: the transcript made at a pause the user talked through is kept
as the turn's *prefix*, and a long stretch of speech (``EXTEND_AFTER_MS``) is transcribed up
to its latest short gap while the user goes on, so at the end only the tail is new. A piece
is never shorter than ``PREFIX_MIN_MS``.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from .clock import Clock
from .completeness import HALLUCINATIONS, assess_completeness, clean_transcript, join_text
from .config import FlowConfig
from .engines.base import SpeechToText, Transcript, TurnModel
from .segmenter import SAMPLE_RATE
from .turn_policy import judge_turn
from .user_segment import Attempt, Segment

logger = logging.getLogger(__name__)

STT_TIMEOUT_S = 20.0
#: the shortest piece of a turn transcribed on its own. Whisper's window is >= 8 s (stt.py), so
#: a shorter turn costs the same to transcribe whole again, and a piece decoded without the
#: sound that follows it is heard worse (measured: "two people tonight" alone came out as "to
#: be able to hide"; a 14 s turn cut at every pause had 3x the word errors of one decode)
PREFIX_MIN_MS = 6700
#: speech going on this long without a pause is transcribed up to its latest gap meanwhile
EXTEND_AFTER_MS = 10_000

Spawn = Callable[..., asyncio.Task[Any]]  # the owner's create_task(coro, *, name=...)


class TurnTranscriber:
    """The STT and end-of-turn model calls of one session's user side."""

    def __init__(
        self,
        *,
        stt: SpeechToText | None,
        turn_model: TurnModel | None,
        flow: Callable[[], FlowConfig],
        clock: Clock,
        spawn: Spawn,
        on_failure: Callable[[Segment, Attempt, Exception], Awaitable[None]],
        conversation_id: str,
        language_code: str | None = "en",
        hotwords: str | None = None,
    ) -> None:
        self.stt = stt
        self.turn_model = turn_model
        #: the turn is transcribed piece by piece (the engine continues a previous text)
        self.incremental = bool(stt is not None and stt.continues_text)
        self._flow = flow
        self.clock = clock
        self._spawn = spawn
        #: an engine failed at a pause: the owner reports it and drops the segment
        self._on_failure = on_failure
        self._cid = conversation_id
        self.language_code = language_code
        self.hotwords = hotwords

    async def transcribe(self, audio: np.ndarray, *, previous_text: str = "") -> Transcript:
        assert self.stt is not None
        extra = {"previous_text": previous_text} if previous_text else {}
        async with asyncio.timeout(STT_TIMEOUT_S):
            return await self.stt.transcribe(audio, language=self.language_code,
                                             hotwords=self.hotwords, **extra)

    # ------------------------------------------------------------------ at a pause
    async def analyse(self, seg: Segment, attempt: Attempt, audio: np.ndarray) -> Transcript | None:
        """Transcribe ``audio`` (the turn up to the pause) and judge it: fills ``attempt``
        (``done``, ``text``, ``p_complete``, ``completeness``, timings) and returns the
        transcript. None: the attempt is no longer the segment's (the user went on; its
        transcript may have become the prefix), or an engine failed (``attempt.failed``; the
        owner's ``on_failure`` was told)."""
        turn_task = asyncio.ensure_future(self._turn_probability(audio, attempt))
        try:
            if self.incremental:
                await self._settled_prefix(seg)
                attempt.before, attempt.start = seg.prefix_text, seg.prefix_samples
            t0 = self.clock.monotonic()
            tr = await self.transcribe(audio[attempt.start:], previous_text=attempt.before)
            p_complete = await turn_task
        except asyncio.CancelledError:
            turn_task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - an engine failure ends this turn cleanly
            turn_task.cancel()
            if seg.prefix_task is asyncio.current_task():
                seg.prefix_task = None  # a pause's transcript adopted as the prefix failed
            if seg.attempt is not attempt:
                return None
            attempt.failed = True
            attempt.done = True
            await self._on_failure(seg, attempt, exc)
            return None
        attempt.tail_text = clean_transcript(tr.text)
        if seg.attempt is not attempt:
            if seg.prefix_task is asyncio.current_task():
                # the user went on after this pause: its transcript is the turn's prefix
                seg.prefix_task = None
                self.adopt_prefix(seg, attempt.samples, attempt.before, attempt.tail_text)
            return None
        attempt.done = True
        attempt.text = join_text(attempt.before, attempt.tail_text)
        if (attempt.text.lower() in HALLUCINATIONS and seg.voiced_ms < 500) or not any(
                ch.isalnum() for ch in attempt.text):
            attempt.text = ""
        language = self.language_code or tr.language
        if self.turn_model is None or language not in self.turn_model.languages:
            p_complete = None
        attempt.p_complete = p_complete
        flow = self._flow()
        attempt.completeness = judge_turn(assess_completeness(attempt.text, language), p_complete,
                                          flow.waits, smart=flow.smart_turn)
        attempt.stt_ms = tr.elapsed_ms or 1000.0 * (self.clock.monotonic() - t0)
        attempt.transcript_time = self.clock.monotonic()
        logger.debug("[%s] pause transcript %r (%s, P(complete) %s)", self._cid,
                     attempt.text, attempt.completeness.value, p_complete)
        return tr

    async def _turn_probability(self, audio: np.ndarray, attempt: Attempt) -> float | None:
        """P(turn complete) from the end-of-turn model, or None (no model, or it failed)."""
        model = self.turn_model
        if model is None or not self._flow().smart_turn:
            return None
        t0 = self.clock.monotonic()
        try:
            async with asyncio.timeout(STT_TIMEOUT_S):
                p = await model.probability(audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the transcript alone judges this turn
            logger.warning("[%s] end-of-turn model failed: %s", self._cid, exc)
            return None
        attempt.turn_model_ms = 1000.0 * (self.clock.monotonic() - t0)
        return p

    def abandon(self, seg: Segment, attempt: Attempt, *, went_on: bool = False) -> None:
        """Stop an attempt the segment no longer has. If the user went on after its pause,
        the transcript of the turn up to that pause is the prefix of the rest: its result is
        adopted, or its transcription keeps running as the segment's ``prefix_task``."""
        task = attempt.task
        if went_on and self.incremental and not attempt.failed:
            if attempt.done:
                self.adopt_prefix(seg, attempt.samples, attempt.before, attempt.tail_text)
            elif task is not None and seg.prefix_task is None:
                seg.prefix_task = task
                task = None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # ------------------------------------------------------------------ pieces (the prefix)
    def maybe_extend_prefix(self, seg: Segment) -> None:
        """While the user talks on, transcribe the turn up to its latest gap once the part not
        transcribed yet is long: at the end of the turn only the tail is left."""
        if seg.prefix_task is not None or seg.attempt is not None:
            return
        untranscribed_ms = 1000.0 * (seg.n_samples - seg.prefix_samples) / SAMPLE_RATE
        cut = seg.gap_sample
        if untranscribed_ms < EXTEND_AFTER_MS or 1000.0 * (cut - seg.prefix_samples) / SAMPLE_RATE < PREFIX_MIN_MS:
            return
        audio = seg.audio()[seg.prefix_samples:cut]
        seg.prefix_task = self._spawn(self._extend_prefix(seg, audio, cut, seg.prefix_text),
                                      name="user_turn.stt_prefix")

    async def _extend_prefix(self, seg: Segment, audio: np.ndarray, end: int, before: str) -> None:
        try:
            tr = await self.transcribe(audio, previous_text=before)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the turn is then transcribed whole at its end
            logger.warning("[%s] partial transcript failed: %s", self._cid, exc)
            return
        finally:
            if seg.prefix_task is asyncio.current_task():
                seg.prefix_task = None
        self.adopt_prefix(seg, end, before, clean_transcript(tr.text))

    @staticmethod
    def adopt_prefix(seg: Segment, end: int, before: str, text: str) -> None:
        """``text`` transcribes the turn's audio from ``before``'s end to ``end``: extend the
        prefix with it, unless another piece got there first or it is too short."""
        if seg.prefix_text != before or end <= seg.prefix_samples:
            return  # another piece got there first
        if 1000.0 * (end - seg.prefix_samples) / SAMPLE_RATE < PREFIX_MIN_MS:
            return  # too short to be worth a piece of its own
        seg.prefix_samples = end
        seg.prefix_text = join_text(before, text)

    @staticmethod
    async def _settled_prefix(seg: Segment) -> None:
        """Wait for a piece of the turn still being transcribed (its result is the prefix)."""
        task = seg.prefix_task
        if task is not None and not task.done():
            try:
                await asyncio.shield(task)
            except Exception:  # noqa: BLE001 - the piece failed: the turn is transcribed whole
                pass

    @staticmethod
    def cancel_prefix(seg: Segment) -> None:
        """Stop the piece being transcribed (the segment is dropped)."""
        prefix, seg.prefix_task = seg.prefix_task, None
        if prefix is not None and not prefix.done() and prefix is not asyncio.current_task():
            prefix.cancel()
