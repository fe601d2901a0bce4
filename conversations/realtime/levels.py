"""What each level of the conversational-flow options means: the waits that end a turn, the
speech that interrupts the replica, when the agent speaks up after a silence.

Turn-taking. At each pause (``speculative_pause_ms`` of silence) the turn so far is judged
twice, in parallel: by the end-of-turn model (Smart Turn v3.2, which hears intonation and
rhythm: P(turn complete)) and by the transcript (``completeness.assess_completeness``: a
question, or a statement ending on a content word; unfinished = ends on "and", "to the",
"um", a comma). The judgement picks the silence, after the user's last voiced sound, that
ends the turn (seconds; the tables below are what the UI shows):

=========  ================  =========  ==================  =========
patience   complete thought  no signal  unfinished thought  threshold
=========  ================  =========  ==================  =========
low        0.20              0.45       0.90                0.35
medium     0.30              0.80       1.60                0.50
high       0.60              1.30       2.40                0.70
=========  ================  =========  ==================  =========

With the model (``turn_detection_model: smart-turn``, the default, in the 23 languages it
knows): complete when P >= the patience's threshold, unless the transcript ends unfinished;
below the threshold the turn waits for the unfinished thought's silence (the longest), or the
"no signal" one when the transcript sounds finished (a second opinion: a flat voice can hide
the end of a question). Without it (other languages, or the model failed) the transcript
alone decides. ``turn_detection_model: vad`` (or the legacy ``smart_turn_detection: false``)
always waits the "no signal" silence. A "complete" turn cannot end before its transcript is
ready, so the first column is a floor, not a promise.

Interruptibility, i.e. how much of the user's speech over the replica stops it:

=========  ==================  ============================  =========================
level      sustained speech    and words (not backchannels)  or speech alone after
=========  ==================  ============================  =========================
low        0.80 s              3                             2.50 s
medium     0.40 s              1                             1.50 s
high       0.064 s             0                             -
=========  ==================  ============================  =========================

Backchannels ("mm-hm", "yeah", "okay", "right", "I see", …) never count as words, so they
never interrupt at low or medium; a cough has no words. At high, speech interrupts as soon
as the VAD calls it speech (two 32 ms chunks), which stops the reply within ~100 ms of a
voiced onset (an unvoiced onset such as the "s" of "stop" is heard by the VAD ~100 ms
later). At medium the check costs a transcription of the first 0.4 s of speech, so the
reply stops ~0.6-0.9 s after the user starts. The greeting is never interruptible.
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

from . import layerspec as spec


@dataclass(frozen=True)
class TurnWaits:
    """Silence (ms) after the last voiced sound that ends the user's turn, by how complete
    the transcript so far sounds."""

    complete_ms: int
    neutral_ms: int
    incomplete_ms: int
    #: P(turn complete) from the end-of-turn model at or above which the turn is complete
    threshold: float = 0.5


@dataclass(frozen=True)
class InterruptPolicy:
    """How much user speech over the replica interrupts it.

    ``min_speech_ms`` of voiced speech, and then at least ``min_words`` words that are not
    backchannels in the transcript of that speech; ``force_ms`` of voiced speech interrupts
    without a transcript (0 = no such rule). ``min_words == 0`` means speech alone decides.
    """

    min_speech_ms: int
    min_words: int
    force_ms: int = 0


#: the turn-taking patience levels -> waits (see the module docstring)
PATIENCE_WAITS: Mapping[str, TurnWaits] = types.MappingProxyType({
    "low": TurnWaits(200, 450, 900, 0.35),
    "medium": TurnWaits(300, 800, 1600, 0.5),
    "high": TurnWaits(600, 1300, 2400, 0.7),
})

#: legacy stt.participant_pause_sensitivity -> waits ("high" sensitivity = quick to answer)
PAUSE_SENSITIVITY_WAITS: Mapping[str, TurnWaits] = types.MappingProxyType({
    "superlow": TurnWaits(1500, 2200, 3500, 0.85),
    "verylow": PATIENCE_WAITS["high"],
    "low": TurnWaits(700, 1100, 2000, 0.6),
    "medium": PATIENCE_WAITS["medium"],
    "high": PATIENCE_WAITS["low"],
})

#: replica_interruptibility -> policy
INTERRUPTIBILITY: Mapping[str, InterruptPolicy] = types.MappingProxyType({
    "low": InterruptPolicy(800, 3, 2500),
    "medium": InterruptPolicy(400, 1, 1500),
    "high": InterruptPolicy(64, 0, 0),
})

#: legacy stt.participant_interrupt_sensitivity -> policy ("high" = easy to interrupt)
INTERRUPT_SENSITIVITY: Mapping[str, InterruptPolicy] = types.MappingProxyType({
    "superlow": InterruptPolicy(1500, 5, 4000),
    "verylow": InterruptPolicy(1100, 4, 3000),
    "low": INTERRUPTIBILITY["low"],
    "medium": INTERRUPTIBILITY["medium"],
    "high": INTERRUPTIBILITY["high"],
})


@dataclass(frozen=True)
class IdlePolicy:
    """conversational_flow.idle_engagement: the agent speaks up after ``after_s`` seconds in which
    the person said nothing and the agent was quiet, at most ``max_nudges`` times in a row until
    the person speaks again (``idle.py``)."""

    after_s: float
    max_nudges: int


#: idle_engagement -> policy ("off": none), from the levels declared with the option
IDLE_ENGAGEMENT: Mapping[str, IdlePolicy] = types.MappingProxyType(
    {level: IdlePolicy(after, most) for level, (after, most) in spec.IDLE_LEVELS.items()})
