"""Does the user sound finished? Text heuristics on a transcript, and transcript helpers.

:func:`assess_completeness` is the cheap smart-turn check on the words alone: a transcript
ending on a comma, dash or ellipsis, or (English) on a conjunction, preposition, article or
filler ("and", "to the", "um"), is unfinished; a question, or a statement of 3+ words ending
with a full stop on a content word, is finished; anything else is neutral (turn_policy.py's
:func:`judge_turn` weighs it against the end-of-turn model). :func:`count_content_words`
counts the words that are not backchannels ("mm-hm", "yeah", "I see"): only those make
speech over the replica an interruption. :func:`clean_transcript`, :func:`join_text` and
``HALLUCINATIONS`` (Whisper's inventions on noise) tidy what the recogniser writes.
"""
from __future__ import annotations

import re
from enum import Enum


class Completeness(Enum):
    COMPLETE = "complete"
    NEUTRAL = "neutral"
    INCOMPLETE = "incomplete"


# Words after which an English sentence is not over.
_INCOMPLETE_END = frozenset("""
and but or nor because since though although unless until while whereas if when where
whether than which whom whose as plus
the a an my your his her its our their some any every each another
to of in on at for with from by about into onto over under between through during before
after without within such very
i we they he she i'm you're we're they're there's
um uh er erm ah hmm mm let
""".split())

# Words that end complete sentences as often as unfinished ones ("I do." / "My name is"):
# no signal either way.
_WEAK_END = frozenset("""
is are was were be been being am do does did have has had will would can could should
shall may might must so then too well really like more most less that this these those
what who no just also
""".split())

# A statement opening with one of these is a dependent clause until a comma brings the main one.
_DEPENDENT_START = frozenset("if unless although though whereas".split())

# Backchannels: what a listener says without taking the turn. Never counted as words
# toward an interruption.
_BACKCHANNEL = frozenset("""
mm mmm mhm mmhmm mm-hmm mm-hm hmm hm uh-huh uhhuh uh huh um ah aha oh ooh wow yeah yes
yep yup ya ok okay right sure alright all i see got it true exactly indeed nice cool great
good fine totally absolutely definitely gotcha cheers thanks thank you no nope
""".split())

_BRACKETED_RE = re.compile(r"[\[(*♪][^\])*♪]*[\])*♪]")
_WORD_RE = re.compile(r"[\w'’-]+", re.UNICODE)
# Whisper's classic inventions on noise or silence
HALLUCINATIONS = frozenset({
    "thank you", "thank you.", "thanks for watching", "thanks for watching!", "you", "bye",
    "bye.", "so", ".", "...", "thank you for watching", "subtitles by the amara.org community",
})


def join_text(before: str, after: str) -> str:
    """Two consecutive pieces of a transcript as one."""
    return " ".join(t for t in (before.strip(), after.strip()) if t)


def clean_transcript(text: str) -> str:
    """Drop sound annotations ("[coughs]", "(laughs)", "♪") and collapse spaces."""
    text = _BRACKETED_RE.sub(" ", text)
    return " ".join(text.split())


def transcript_words(text: str) -> list[str]:
    return [w.lower().strip("-'’") for w in _WORD_RE.findall(clean_transcript(text))
            if w.strip("-'’")]


_HUM_RE = re.compile(r"^[mhnu]+$")


def count_content_words(text: str) -> int:
    """Words that are not backchannels ("mm-hm", "yeah", "I see" count zero). Hums in any
    spelling ("mmhm", "uhuh", "M. M.") and single letters do not count either: that is how
    a recogniser writes a hum or a cough."""
    n = 0
    for w in transcript_words(text):
        if w in _BACKCHANNEL:
            continue
        parts = [p for p in w.split("-") if p]
        if all(len(p) < 2 or _HUM_RE.match(p) or p in _BACKCHANNEL for p in parts):
            continue
        n += 1
    return n


def assess_completeness(text: str, language_code: str | None = "en") -> Completeness:
    """A cheap smart-turn check on the transcript so far: does it sound finished?

    Unfinished: ends on a comma, dash or ellipsis, or (English) on a conjunction,
    preposition, article, possessive or filler ("and", "to the", "my", "um"), whatever
    punctuation the recogniser added. Finished: a question or exclamation, or a statement of
    3+ words ending with a full stop on a content word. Anything else (short answers, a
    final auxiliary such as "I do." / "my name is", other languages without such marks) is
    neutral.
    """
    t = clean_transcript(text).strip()
    if not t:
        return Completeness.NEUTRAL
    if t.endswith(("...", "…", ",", "-", "—", "–", ";", ":")):
        return Completeness.INCOMPLETE
    if t.endswith(("?", "!", "？", "！", "¿")):
        return Completeness.COMPLETE
    words = transcript_words(t)
    english = (language_code or "en").startswith("en")
    if english and words and words[-1] in _INCOMPLETE_END:
        return Completeness.INCOMPLETE
    if english and words and words[0] in _DEPENDENT_START and "," not in t:
        return Completeness.INCOMPLETE  # "If it rains tomorrow." waits for its main clause
    if english and words and words[-1] in _WEAK_END:
        return Completeness.NEUTRAL
    if t.endswith((".", "。")) and len(words) >= 3:
        return Completeness.COMPLETE
    return Completeness.NEUTRAL
