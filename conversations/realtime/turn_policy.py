"""When the user's turn ends: the end-of-turn judgement and the wait it sets.

At a pause (a silence of ``FlowConfig.speculative_pause_ms``) the user side transcribes the
turn so far and, in parallel, asks the end-of-turn model (Smart Turn) whether the user sounds
finished (turn_transcript.py). :func:`judge_turn` combines the two: the transcript, judged by
completeness.py, is a second opinion, and the only judge where the model is absent.
:func:`turn_wait_ms` turns that judgement into the silence that ends the turn, from the
patience table (``TurnWaits``, levels.py). :func:`decide_turn` applies it to the segment at
hand: wait for more silence, drop it (noise, nothing said) or commit it as the user's turn.
All silences are measured in input-audio time, not wall time.

Also here, the little the user side shares with the rest of the pipeline: the session's turn
counter (:class:`TurnCounter`) and what it needs to know about the replica
(:class:`PlaybackState`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .completeness import Completeness
from .config import FlowConfig
from .levels import TurnWaits
from .segmenter import MIN_TURN_VOICED_MS
from .user_segment import Segment


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
    """The silence after the last voiced sound that ends a turn judged ``completeness``."""
    if not smart or completeness is None or completeness is Completeness.NEUTRAL:
        return waits.neutral_ms
    if completeness is Completeness.COMPLETE:
        return waits.complete_ms
    return waits.incomplete_ms


class TurnDecision(Enum):
    WAIT = "wait"  # not settled yet (no transcript, the user talks, or the silence is short)
    DROP = "drop"  # noise, a cough, nothing said: not a turn
    COMMIT = "commit"  # the user's turn is over


def decide_turn(seg: Segment, *, speaking: bool, silence_ms: float, flow: FlowConfig) -> TurnDecision:
    """What a turn candidate is now, given its transcript at the latest pause
    (``seg.attempt``) and the silence since its last voiced sound. A segment cut at its
    maximum length (``force_commit``) is committed as soon as it is transcribed."""
    attempt = seg.attempt
    if attempt is None or not attempt.done or attempt.failed:
        return TurnDecision.WAIT
    if speaking and not seg.force_commit:
        return TurnDecision.WAIT
    if not attempt.text or seg.voiced_ms < MIN_TURN_VOICED_MS:
        return TurnDecision.DROP
    wait = turn_wait_ms(flow.waits, attempt.completeness, smart=flow.smart_turn)
    if not seg.force_commit and silence_ms < wait:
        return TurnDecision.WAIT
    return TurnDecision.COMMIT


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
