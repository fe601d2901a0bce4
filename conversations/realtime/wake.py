"""Wake and sleep phrases (``conversational_flow.wake_phrase`` / ``sleep_phrase``): which of the
user's turns the agent answers.

With a wake phrase the agent starts asleep. A turn that contains the wake phrase wakes it and is
answered (``system.wake_phrase_detected``). Without a sleep phrase it is asleep again right
after that turn, so only the turns that contain the wake phrase are answered. With a sleep
phrase (as in the hosted product) it stays awake and answers every turn until a turn contains
the sleep phrase (``system.sleep_phrase_detected``); that turn is not answered, and the agent
waits for the wake phrase again.

A turn the agent does not answer is still transcribed and reported (``conversation.utterance``,
so the transcript shows it); it makes no reply, no replica event and no entry in the LLM's
history, and speech over the agent interrupts it only if it contains the wake phrase (or the
agent is awake). The user side (``turn_taking.UserTurnProcessor``) asks the gate at three
points: before it sends a speculative transcript to the LLM (:meth:`WakeGate.would_answer`),
when a turn is committed (:meth:`WakeGate.admit`, which moves the state and emits the events)
and when speech over the agent might interrupt it (:meth:`WakeGate.admits_barge_in`).

Matching works on what Whisper writes, not on what was meant: both texts are reduced to
lower-case words without accents or punctuation ("Hey, Ana!" is "hey ana"), and the phrase may
be found with a few letters wrong, by edit distance over the letters of a run of words (a
run one word shorter or longer too, so "hey-ana" or "heyana" match "hey ana"): none for a
phrase of under 5 letters, one for under 10, two for under 16, one per 8 letters beyond.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from .events import Event, EventEmitter, SleepPhraseDetected, WakePhraseDetected

logger = logging.getLogger(__name__)

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def phrase_words(text: str) -> list[str]:
    """``text`` as lower-case ASCII words: accents, case and punctuation dropped, and an
    apostrophe joins ("what's" -> "whats")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("'", "").replace("\u2019", "")
    return [w for w in _NOT_WORD.split(plain) if w]


def allowed_edits(n_letters: int) -> int:
    """How many letters may be wrong in a match of a phrase of ``n_letters`` letters."""
    if n_letters < 5:
        return 0
    if n_letters < 10:
        return 1
    if n_letters < 16:
        return 2
    return n_letters // 8


def _within_edits(a: str, b: str, limit: int) -> bool:
    """Whether the edit distance of ``a`` and ``b`` is at most ``limit`` (banded DP)."""
    if abs(len(a) - len(b)) > limit:
        return False
    if limit == 0:
        return a == b
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``text`` (a transcript) contains ``phrase``, forgiving case, punctuation, accents,
    spacing and a few wrong letters (see the module docstring)."""
    target_words = phrase_words(phrase)
    if not target_words:
        return False
    target = "".join(target_words)
    words = phrase_words(text)
    limit = allowed_edits(len(target))
    n = len(target_words)
    for size in range(max(1, n - 1), n + 2):
        for i in range(len(words) - size + 1):
            if _within_edits("".join(words[i:i + size]), target, limit):
                return True
    return False


@dataclass(frozen=True)
class WakeDecision:
    """What a turn does: answered or not, and whether it woke the agent or sent it to sleep."""

    answer: bool
    woke: bool = False
    slept: bool = False


class WakeGate:
    """The wake/sleep state of one conversation. Used from the event loop only."""

    def __init__(self, wake_phrase: str, sleep_phrase: str = "", *,
                 emitter: EventEmitter | None = None) -> None:
        if not phrase_words(wake_phrase):
            raise ValueError("wake_phrase must contain a word")
        self.wake_phrase = wake_phrase
        self.sleep_phrase = sleep_phrase if phrase_words(sleep_phrase) else ""
        self.emitter = emitter
        self.awake = False
        #: turns heard and not answered (stats, tests)
        self.unanswered = 0

    @classmethod
    def for_flow(cls, wake_phrase: str, sleep_phrase: str = "", *,
                 emitter: EventEmitter | None = None) -> WakeGate | None:
        """The gate for a PAL's phrases, or None when it has no wake phrase (every turn answered)."""
        return cls(wake_phrase, sleep_phrase, emitter=emitter) if phrase_words(wake_phrase) else None

    @property
    def asleep(self) -> bool:
        """Waiting for the wake phrase: the agent says nothing of its own accord."""
        return not self.awake

    def decide(self, text: str) -> WakeDecision:
        """What the turn ``text`` would do now (nothing changes)."""
        if self.awake:
            if contains_phrase(text, self.sleep_phrase):
                return WakeDecision(False, slept=True)
            return WakeDecision(True)
        if contains_phrase(text, self.wake_phrase):
            return WakeDecision(True, woke=True)
        return WakeDecision(False)

    def would_answer(self, text: str) -> bool:
        return self.decide(text).answer

    def admits_barge_in(self, text: str) -> bool:
        """Whether speech over the agent, transcribed as ``text``, may interrupt it: any speech
        while it is awake, only speech with the wake phrase while it is asleep."""
        return self.awake or contains_phrase(text, self.wake_phrase)

    def admit(self, text: str, *, turn_idx: int, inference_id: str | None = None) -> bool:
        """A committed turn: move the state, emit the wake/sleep event, return whether it is answered."""
        decision = self.decide(text)
        if decision.woke:
            # without a sleep phrase, the agent wakes for this one turn only
            self.awake = bool(self.sleep_phrase)
            self._emit(WakePhraseDetected(turn_idx=turn_idx, inference_id=inference_id))
        elif decision.slept:
            self.awake = False
            self._emit(SleepPhraseDetected(turn_idx=turn_idx, inference_id=inference_id))
        if not decision.answer:
            self.unanswered += 1
        return decision.answer

    def _emit(self, event: Event) -> None:
        if self.emitter is None:
            return
        logger.info("[%s] %s", self.emitter.conversation_id, event.name)
        self.emitter.emit(event)
