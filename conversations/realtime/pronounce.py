"""Pronunciation dictionaries applied to the voice: one module for every TTS engine.

A dictionary is a list of rules ``{text, pronunciation, type, case_sensitive, word_boundaries}``
(the hosted API's shape). Before a phrase is synthesised, every match of a rule's ``text`` is
replaced, for the voice only:

- ``alias``: by the ``pronunciation`` text (case-insensitive and whole-word unless the rule
  says otherwise);
- ``ipa``: by the IPA in the notation the engine takes inline (:data:`PHONEME_INPUT`): eSpeak
  NG's ``[[mnemonics]]`` (IPA converted with :func:`ipa_to_espeak`), Piper's ``[[IPA]]`` (piper
  phonemizes to IPA itself and takes raw IPA in double brackets), Azure's SSML
  ``<phoneme alphabet="ipa" ph="…">``. An engine that takes no phonemes (openai-tts,
  elevenlabs, cartesia) speaks the word as written; :class:`PronouncedTTS` logs that once per
  call and the PAL's API response carries a warning (``pronunciation_warnings``).

The transcript keeps the written words: :class:`PronouncedTTS` hands the engine the rewritten
phrase and maps every chunk's ``text`` and word timings back onto the original phrase, so
captions, the history the LLM sees and "what was heard" at an interruption are the words the
LLM wrote ("OpenCVI"), never the respelling ("open see vee eye").

No Django here: the Django side builds a :class:`Pronunciation` from the stored rules when a
call's configuration is loaded (``conversations.live.config``), and ``frontdoor.build_tts``
wraps the PAL's engine with it.
"""
from __future__ import annotations

import bisect
import dataclasses
import html
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .engines.base import TextToSpeech, TTSChunk, VoiceOptions, WordTiming
from .engines.timings import EDGE_PUNCT, IPA, IPA_PAIRS

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the rules
RULE_TYPES: tuple[str, ...] = ("alias", "ipa")
#: limits of a dictionary (ours: the hosted docs give only the name's)
MAX_NAME_LENGTH = 255
MAX_RULES = 1000
MAX_TEXT_LENGTH = 200
MAX_PRONUNCIATION_LENGTH = 500

#: the symbols an ``ipa`` pronunciation may use: the IPA chart's letters (with the common
#: extensions eSpeak and dictionaries write: ɚ ɝ ᵻ ɫ, affricate ligatures), suprasegmentals,
#: tone letters, modifier letters and combining diacritics, and spaces between words
IPA_LETTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyz"
    "ɐɑɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʕʢʡ"
    "ǀǁǂǃʦʣʨʥᵻᵿ"
)
IPA_SUPRASEGMENTALS = frozenset("ˈˌːˑ.‿|‖˥˦˧˨˩↗↘ꜛꜜ")
IPA_MODIFIERS = frozenset("ʰʱʷʲˠˤⁿˡʼ˞")
IPA_COMBINING = frozenset(
    "\u0300\u0301\u0302\u0304\u0306\u0308\u030a\u030b\u030c\u030f\u0318\u0319\u031a\u031c\u031d"
    "\u031e\u031f\u0320\u0324\u0325\u0329\u032a\u032c\u032f\u0330\u0334\u0339\u033a\u033b\u033c"
    "\u033d\u0303\u035c\u0361"
)
IPA_SYMBOLS = IPA_LETTERS | IPA_SUPRASEGMENTALS | IPA_MODIFIERS | IPA_COMBINING | frozenset(" ")
#: look-alikes people type for IPA marks, with the mark they mean (for the error message)
_LOOKALIKES = {"'": "ˈ (U+02C8)", ",": "ˌ (U+02CC)", ":": "ː (U+02D0)", "g": "ɡ"}


def ipa_problem(value: str) -> str | None:
    """Why ``value`` is not an IPA transcription (None: it is one)."""
    text = unicodedata.normalize("NFD", value).strip()
    if not text:
        return "must not be empty"
    bad = [ch for ch in dict.fromkeys(text) if ch not in IPA_SYMBOLS]
    if bad:
        hints = [f"{ch!r} (use {_LOOKALIKES[ch]})" for ch in bad if ch in _LOOKALIKES]
        shown = ", ".join(hints or [repr(ch) for ch in bad[:8]])
        return (f"is not IPA: {shown} {'is' if len(bad) == 1 else 'are'} not IPA symbols "
                "(write the pronunciation in the International Phonetic Alphabet, e.g. ˈbɑju, "
                "or make the rule an alias)")
    if not any(ch in IPA_LETTERS for ch in text):
        return "is not IPA: it has no speech sounds, only marks"
    return None


@dataclass(frozen=True)
class Rule:
    text: str
    pronunciation: str
    type: str = "alias"
    case_sensitive: bool = False
    word_boundaries: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        return cls(text=str(data["text"]), pronunciation=str(data["pronunciation"]),
                   type=str(data.get("type") or "alias"), case_sensitive=bool(data.get("case_sensitive", False)),
                   word_boundaries=bool(data.get("word_boundaries", True)))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Pronunciation:
    """The rules of one dictionary, ready to apply (immutable; part of a call's frozen config)."""

    rules: tuple[Rule, ...] = ()
    dictionary_id: str = ""
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    #: the rule (index in ``rules``) of each group of the pattern
    _rule_of_group: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rules:
            # One alternation, a group per rule, the longest texts first (Python takes the first
            # alternative that matches, so "New York City" wins over "New York"); case and word
            # boundaries per rule. (?<!\w)/(?!\w) rather than \b: a text may start or end with
            # a symbol ("C++").
            order = sorted(range(len(self.rules)), key=lambda i: -len(self.rules[i].text))
            alternatives = []
            for i in order:
                rule = self.rules[i]
                body = re.escape(rule.text)
                if rule.word_boundaries:
                    body = rf"(?<!\w){body}(?!\w)"
                alternatives.append(f"({body})" if rule.case_sensitive else f"((?i:{body}))")
            object.__setattr__(self, "_pattern", re.compile("|".join(alternatives)))
            object.__setattr__(self, "_rule_of_group", tuple(order))

    @classmethod
    def from_dicts(cls, rules: Iterable[Mapping[str, Any]], *, dictionary_id: str = "") -> Pronunciation:
        return cls(rules=tuple(Rule.from_dict(r) for r in rules), dictionary_id=dictionary_id)

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def ipa_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.type == "ipa")

    def matches(self, text: str) -> list[tuple[int, int, Rule]]:
        """Non-overlapping matches, left to right; at one place the longest rule text wins."""
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), self.rules[self._rule_of_group[m.lastindex - 1]])
                for m in self._pattern.finditer(text) if m.end() > m.start()]


# --------------------------------------------------------------------------- IPA -> eSpeak
#: IPA symbols outside English (Kirshenbaum, the ASCII IPA eSpeak's phoneme names follow),
#: beside timings.IPA / IPA_PAIRS (the English ones, shared with the face's viseme mapping)
_KIRSHENBAUM_EXTRA = {
    "y": "y", "ø": "Y", "œ": "W", "ɶ": "W", "ɨ": "i\"", "ʉ": "u\"", "ɯ": "u-", "ɤ": "o-", "ɘ": "@",
    "ɵ": "@", "ɞ": "3", "ʏ": "y", "ç": "C", "ʝ": "j", "ɣ": "Q", "χ": "X", "ʁ": "r", "ʀ": "r", "ħ": "H",
    "ɲ": "n^", "ʎ": "l^", "ɬ": "l", "ɮ": "l", "ɫ": "l", "ʍ": "w", "ɥ": "j", "ɕ": "S", "ʑ": "Z",
    "ʂ": "S", "ʐ": "Z", "ɳ": "n", "ɭ": "l", "ʈ": "t", "ɖ": "d", "c": "c", "ɟ": "J", "q": "q",
    "ɢ": "G", "ɴ": "N", "ɸ": "F", "β": "B", "ʋ": "v", "ɻ": "r", "ɽ": "r", "ɺ": "l", "ʙ": "b",
    "ʦ": "ts", "ʣ": "dz", "ʧ": "tS", "ʤ": "dZ", "ʨ": "tS", "ʥ": "dZ", "ᵿ": "U",
}
#: boundaries and tones eSpeak's phoneme input has no use for
_DROPPED = frozenset(".‿|‖˥˦˧˨˩↗↘ꜛꜜ") | IPA_COMBINING | IPA_MODIFIERS - frozenset("˞")


def ipa_to_espeak(ipa: str) -> str:
    """An IPA transcription in eSpeak NG's phoneme mnemonics, for its ``[[…]]`` input: ˈ → ',
    ˌ → ",", length ː → ":", two-letter units (diphthongs, affricates, long vowels) first."""
    text = "".join(ch for ch in unicodedata.normalize("NFD", ipa.strip()) if ch not in _DROPPED)
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        pair = text[i:i + 2]
        if pair in IPA_PAIRS:
            out.append(IPA_PAIRS[pair])
            i += 2
            continue
        if ch == "ˈ":
            out.append("'")
        elif ch == "ˌ":
            out.append(",")
        elif ch in "ːˑ":
            if out and not out[-1].endswith(":"):
                out.append(":")
        elif ch == "˞":  # r-colouring: ə˞ is eSpeak's [3]
            if out and out[-1] == "@":
                out[-1] = "3"
        elif ch.isspace():
            out.append(" ")
        elif ch in IPA:
            out.append(IPA[ch])
        elif ch in _KIRSHENBAUM_EXTRA:
            out.append(_KIRSHENBAUM_EXTRA[ch])
        i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip()


# --------------------------------------------------------------------------- engines
#: how each engine takes phonemes inline: "espeak" ([[eSpeak mnemonics]]), "ipa" ([[IPA]]),
#: "ssml" (SSML <phoneme alphabet="ipa">); engines not named take none
PHONEME_INPUT: Mapping[str, str] = {"espeak-ng": "espeak", "piper": "ipa", "azure": "ssml"}


class SSMLText(str):
    """A phrase already written as the body of an SSML ``<voice>`` (escaped, with
    ``<phoneme>`` elements): an SSML engine puts it in as it is instead of escaping it."""


@dataclass
class Rewrite:
    """A phrase as the engine gets it (``spoken``), with the pieces that differ from the
    original: ``spans`` of (original start, original end, spoken start, spoken end)."""

    original: str
    spoken: str
    spans: list[tuple[int, int, int, int]]
    #: ipa rules that matched but the engine cannot pronounce (the word is spoken as written)
    unpronounced: list[Rule]

    def __post_init__(self) -> None:
        self._starts = [s[2] for s in self.spans]

    def to_original(self, pos: int, *, end: bool = False) -> int:
        """A position in ``spoken`` as the position in ``original``: inside a replaced piece,
        the piece's start (or, for the end of a range, its end)."""
        idx = bisect.bisect_left(self._starts, pos) - 1 if end else bisect.bisect_right(self._starts, pos) - 1
        if idx < 0:
            return min(pos, len(self.original))
        o_start, o_end, s_start, s_end = self.spans[idx]
        if (end and pos <= s_end) or (not end and pos < s_end):
            return o_end if end else o_start
        return min(len(self.original), pos - s_end + o_end)


def rewrite(text: str, pronunciation: Pronunciation, notation: str | None) -> Rewrite:
    """``text`` with every rule applied for an engine of ``notation`` (see :data:`PHONEME_INPUT`)."""
    ssml = notation == "ssml"
    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    unpronounced: list[Rule] = []
    length = 0

    def plain(segment: str, at: int) -> None:
        nonlocal length
        if not ssml:
            parts.append(segment)
            length += len(segment)
            return
        for k, ch in enumerate(segment):  # escaping changes lengths: each escaped character is a span
            escaped = html.escape(ch)
            if escaped != ch:
                spans.append((at + k, at + k + 1, length, length + len(escaped)))
            parts.append(escaped)
            length += len(escaped)

    def replaced(start: int, end: int, spoken: str) -> None:
        nonlocal length
        spans.append((start, end, length, length + len(spoken)))
        parts.append(spoken)
        length += len(spoken)

    pos = 0
    for start, end, rule in pronunciation.matches(text):
        plain(text[pos:start], pos)
        word = text[start:end]
        if rule.type == "alias":
            replaced(start, end, html.escape(rule.pronunciation) if ssml else rule.pronunciation)
        elif notation == "espeak":
            replaced(start, end, f"[[{ipa_to_espeak(rule.pronunciation)}]]")
        elif notation == "ipa":
            ipa = "".join(ch for ch in unicodedata.normalize("NFC", rule.pronunciation.strip())
                          if ch not in ".‿|‖")  # syllable marks would be read as pauses
            replaced(start, end, f"[[{ipa}]]")
        elif ssml:
            replaced(start, end, f'<phoneme alphabet="ipa" ph="{html.escape(rule.pronunciation.strip())}">'
                                 f"{html.escape(word)}</phoneme>")
        else:
            unpronounced.append(rule)
            plain(word, start)
        pos = end
    plain(text[pos:], pos)
    return Rewrite(original=text, spoken="".join(parts), spans=spans, unpronounced=unpronounced)


def restore_chunk(chunk: TTSChunk, rw: Rewrite, cursor: int) -> tuple[TTSChunk, int]:
    """``chunk`` (a piece of ``rw.spoken`` from ``cursor`` on) with the original phrase's text
    and words; returns it and where the next chunk's text starts in ``rw.spoken``."""
    start = rw.spoken.find(chunk.text, cursor) if chunk.text else -1
    if start < 0:
        start = cursor
    end = start + len(chunk.text)
    o_start, o_end = rw.to_original(start), rw.to_original(end, end=True)
    words: list[WordTiming] = []
    spans: list[tuple[int, int]] = []
    for w in chunk.words:
        if w.char_start < 0:
            words.append(w)
            spans.append((-1, -1))
            continue
        a = rw.to_original(start + w.char_start)
        b = rw.to_original(start + w.char_start + w.char_len, end=True)
        if words and spans[-1][0] >= 0 and a < spans[-1][1]:
            # several spoken words for one written one ("open see vee eye" for "OpenCVI")
            a = min(a, spans[-1][0])
            b = max(b, spans[-1][1])
            prev = words.pop()
            spans.pop()
            w = dataclasses.replace(w, start_ms=prev.start_ms)
        token = rw.original[a:b]
        word = token.strip(EDGE_PUNCT) or token
        a += token.find(word) if word in token else 0
        words.append(WordTiming(word=word, start_ms=w.start_ms, end_ms=w.end_ms,
                                char_start=a - o_start, char_len=len(word)))
        spans.append((a, a + len(word)))
    return dataclasses.replace(chunk, text=rw.original[o_start:o_end], words=words), end


class PronouncedTTS(TextToSpeech):
    """An engine with a pronunciation dictionary: the engine hears the rewritten phrase, the
    chunks it gives back carry the original words. Anything else is the engine's own."""

    def __init__(self, engine: TextToSpeech, pronunciation: Pronunciation) -> None:
        self.engine = engine
        self.pronunciation = pronunciation
        self.name = engine.name
        self.sample_rate = engine.sample_rate
        self.notation = PHONEME_INPUT.get(engine.name)
        self._told: set[str] = set()

    def __getattr__(self, item: str) -> Any:  # noqa: ANN401 - the engine's own attributes (aclose, …)
        return getattr(self.engine, item)

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        rw = rewrite(text, self.pronunciation, self.notation)
        self._tell(rw.unpronounced)
        if not rw.spans:
            async for chunk in self.engine.synthesize(text, voice=voice):
                yield chunk
            return
        spoken = SSMLText(rw.spoken) if self.notation == "ssml" else rw.spoken
        cursor = 0
        stream = self.engine.synthesize(spoken, voice=voice)
        try:
            async for chunk in stream:
                restored, cursor = restore_chunk(chunk, rw, cursor)
                yield restored
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def synthesize_blocking(self, text: str, *, voice: VoiceOptions) -> list[TTSChunk]:
        """The engine's ``synthesize_blocking`` (embedded engines: tools, benchmarks, tests) with the rules."""
        rw = rewrite(text, self.pronunciation, self.notation)
        self._tell(rw.unpronounced)
        if not rw.spans:
            return self.engine.synthesize_blocking(text, voice=voice)
        chunks, cursor = [], 0
        for chunk in self.engine.synthesize_blocking(rw.spoken, voice=voice):
            restored, cursor = restore_chunk(chunk, rw, cursor)
            chunks.append(restored)
        return chunks

    def _tell(self, rules: list[Rule]) -> None:
        """Once per call and word: the engine cannot say this IPA rule, so the word is spoken as written."""
        for rule in rules:
            if rule.text not in self._told:
                self._told.add(rule.text)
                logger.warning("pronunciation dictionary %s: the %s TTS engine takes no phonemes, so %r is "
                               "spoken as written (its IPA rule %r is not applied)",
                               self.pronunciation.dictionary_id or "-", self.name, rule.text, rule.pronunciation)


def with_pronunciation(engine: TextToSpeech, pronunciation: Pronunciation | None) -> TextToSpeech:
    """``engine`` applying ``pronunciation`` (the engine itself when there are no rules)."""
    if not pronunciation:
        return engine
    return PronouncedTTS(engine, pronunciation)


def unpronounceable(engine_name: str, pronunciation: Pronunciation) -> tuple[Rule, ...]:
    """The IPA rules ``engine_name`` (a registry name) cannot pronounce."""
    return () if engine_name in PHONEME_INPUT else pronunciation.ipa_rules
