"""How barge-in decides: when the user's speech over the replica interrupts it.

Speech that starts while the replica is answering is an interruption candidate (an
*overlap*). It interrupts only once it has lasted ``InterruptPolicy.min_speech_ms`` of voice
and its transcript has at least ``min_words`` words that are not backchannels ("mm-hm",
"yeah": completeness.py), or once it has lasted ``force_ms``; the transcript is checked
again after every ``RECHECK_MS`` more of voice. An agent asleep (wake.py) is interrupted only
by words with its wake phrase. A segment that never qualifies is a backchannel and is dropped
once the user is quiet. The greeting is never interruptible. Once interrupted, the segment is
the user's next turn, from its first syllable; so is an overlap that goes on after the
replica has finished.

Speech while a reply is committed but not heard yet (still being thought) is not a barge-in:
the reply is kept unless the speech becomes a turn, and then one reply answers both turns.

:class:`BargeIn` is a helper of :class:`~.turn_taking.UserTurnProcessor`, which owns it and
its tasks; all durations are in input-audio time.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from .completeness import count_content_words
from .config import FlowConfig
from .engines.base import Transcript
from .segmenter import CHUNK_MS
from .turn_policy import PlaybackState
from .user_segment import Segment
from .wake import WakeGate

logger = logging.getLogger(__name__)

RECHECK_MS = 300  # re-run the interruption transcript check after this much more speech


class BargeIn:
    """The interruption decision for one session's user side. It acts through its owner:
    ``interrupt`` interrupts the replica, ``drop`` drops a segment (a backchannel),
    ``current`` is the segment being decided."""

    def __init__(
        self,
        *,
        flow: Callable[[], FlowConfig],
        playback: PlaybackState,
        wake: WakeGate | None,
        turns_enabled: bool,
        transcribe: Callable[[np.ndarray], Awaitable[Transcript]],
        spawn: Callable[..., asyncio.Task[Any]],  # the owner's create_task(coro, *, name=...)
        current: Callable[[], Segment | None],
        interrupt: Callable[[], Awaitable[None]],
        drop: Callable[[Segment], Awaitable[None]],
        conversation_id: str,
    ) -> None:
        self._flow = flow
        self.playback = playback
        self.wake = wake
        self.turns_enabled = turns_enabled
        self._transcribe = transcribe
        self._spawn = spawn
        self._current = current
        self._interrupt_replica = interrupt
        self._drop = drop
        self._cid = conversation_id
        #: observable counters (tests, stats)
        self.interruptions = 0
        self.backchannels = 0

    # ------------------------------------------------------------------ a segment starts
    def reply_pending(self) -> bool:
        """A reply is committed but not heard yet (still thinking) and may be replaced. Speech
        then is not a barge-in: the reply is kept unless the speech becomes a turn, and then
        one reply answers both turns (never a pending reply thrown away for a cough)."""
        p = self.playback
        return (self.turns_enabled and p.replica_active and p.replica_interruptible
                and not p.replica_speaking)

    def speech_start(self) -> tuple[bool, bool]:
        """Speech starts now: is it over the replica (``Segment.overlap``), and does it
        supersede a pending reply (``Segment.supersedes``)?"""
        pending = self.reply_pending()
        return self.turns_enabled and self.playback.replica_active and not pending, pending

    def follow_playback(self, seg: Segment) -> None:
        """The pending reply started to play while the user talks: from now on this is
        speech over the replica, and the barge-in rules decide."""
        if seg.supersedes and not seg.overlap and self.playback.replica_speaking:
            seg.supersedes = False
            seg.overlap = True

    # ------------------------------------------------------------------ the decision
    async def step(self, seg: Segment, *, voiced: bool, silence_ms: float, speaking: bool) -> None:
        """One chunk of an overlap not promoted yet: interrupt, promote it to a turn (the
        replica finished meanwhile), drop it as a backchannel, or wait."""
        policy = self._flow().interrupt_policy
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
        if not speaking and silence_ms >= self._flow().waits.neutral_ms:
            # a backchannel (or speech over the greeting) that never took the turn
            self.backchannels += 1
            await self._drop(seg)

    def _maybe_check_words(self, seg: Segment) -> None:
        if seg.check_task is not None and not seg.check_task.done():
            return
        if seg.voiced_ms - seg.checked_at_voiced_ms < RECHECK_MS:
            return
        seg.checked_at_voiced_ms = seg.voiced_ms
        seg.check_task = self._spawn(self._check_words(seg, seg.audio()),
                                     name="user_turn.barge_in_check")

    async def _check_words(self, seg: Segment, audio: np.ndarray) -> None:
        try:
            tr = await self._transcribe(audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed check just does not interrupt
            logger.warning("[%s] barge-in transcript failed: %s", self._cid, exc)
            return
        words = count_content_words(tr.text)
        logger.debug("barge-in check %r -> %d words", tr.text, words)
        if (self._current() is seg and not seg.promoted and self.playback.replica_active
                and self.playback.replica_interruptible
                and words >= self._flow().interrupt_policy.min_words
                and (self.wake is None or self.wake.admits_barge_in(tr.text))):
            await self._interrupt(seg)

    async def _interrupt(self, seg: Segment) -> None:
        seg.promoted = True
        self.interruptions += 1
        logger.info("[%s] barge-in after %.0f ms of speech", self._cid, seg.voiced_ms)
        await self._interrupt_replica()

    @staticmethod
    def cancel_check(seg: Segment) -> None:
        """Stop the segment's transcript check (the segment is settled)."""
        task = seg.check_task
        seg.check_task = None
        # a check that decided to interrupt (promoted) is passing the interruption down the
        # chain: cancelling it half-way would leave some processors unflushed
        if (task is not None and not task.done() and task is not asyncio.current_task()
                and not seg.promoted):
            task.cancel()
