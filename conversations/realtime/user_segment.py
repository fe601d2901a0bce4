"""The state of the user's speech while it is being decided: a :class:`Segment` and its
:class:`Attempt` s.

A segment is a stretch of user speech, with its pauses, from the first syllable until it is
settled: a turn committed, a barge-in promoted to a turn, or a backchannel (or noise)
dropped. :class:`~.turn_taking.UserTurnProcessor` holds at most one at a time; the turn
policy (turn_policy.py), the transcription (turn_transcript.py) and the barge-in rules
(barge_in.py) read and write its fields. Sample counts are in input-audio samples from the
segment's start unless a field says otherwise.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from .completeness import Completeness


@dataclass
class Attempt:
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
class Segment:
    """A stretch of user speech (with its pauses) that may become a turn."""

    start_sample: int  # in the session's input audio
    chunks: list[np.ndarray]
    overlap: bool  # began while the replica was answering
    promoted: bool = False  # an overlap that interrupted (or outlasted) the replica
    voiced_ms: float = 0.0
    voiced_after_replica_ms: float = 0.0
    last_voiced_sample: int = 0  # in the session's input audio
    last_voiced_time: float = 0.0
    attempt: Attempt | None = None
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
        """It may become a turn: not speech over the replica, or speech that took over."""
        return not self.overlap or self.promoted

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
