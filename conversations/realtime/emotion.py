"""Emotion tags in the text the agent speaks (``tts.tts_emotion_control``).

The tag is the hosted default voice's own (Cartesia Sonic-3's markup): ``<emotion value="happy"/>``
changes the voice from there to the next tag or the end of the reply; ``</emotion>`` (or
``value="neutral"``) goes back to the voice's own manner. The LLM writes them when the PAL turns
emotion control on (:data:`EMOTION_NOTE` joins its system prompt), and a client may put them in
``conversation.echo`` text.

:class:`EmotionalPhrases` sits in front of the phrase splitter: it takes the streamed text, reads
the tags out of it (a tag cut across two LLM deltas is held until it is complete), and gives
``(phrase, emotion)`` pairs; a change of emotion ends the phrase before it, so every phrase is
spoken in one manner. The tags never reach a voice, the captions or the transcript; with
emotion control off they are removed and ignored.

Each emotion is declared once in :data:`EMOTIONS`: its prosody (rate, pitch in semitones,
intonation range, loudness) that the embedded engines apply with their own parameters, its Azure
speaking style, and (being Cartesia's name too) what Cartesia's sonic-3 models are asked for.
Values from other vocabularies (the hosted face's emotions: happiness, anger…) are read as the
closest one; an unknown value means neutral.
"""
from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass

from .phrases import PhraseSplitter


@dataclass(frozen=True)
class Emotion:
    name: str
    #: speaking rate, × the voice's (and the PAL's speed)
    rate: float = 1.0
    #: pitch shift in semitones
    pitch_st: float = 0.0
    #: intonation range, × the voice's
    pitch_range: float = 1.0
    #: loudness, × the voice's
    volume: float = 1.0
    #: Azure neural voices' ``mstts:express-as`` style (a voice without it keeps its own manner)
    azure_style: str = ""

    @property
    def pitch_ratio(self) -> float:
        return 2.0 ** (self.pitch_st / 12.0)


NEUTRAL = Emotion("neutral")

#: the emotions, each declared once (the prosody follows the usual acoustic correlates of emotional
#: speech: joy and fear raise pitch and rate, sadness lowers and slows them and narrows the range,
#: anger is louder with a wide range)
EMOTIONS: Mapping[str, Emotion] = types.MappingProxyType({e.name: e for e in (
    NEUTRAL,
    Emotion("happy", rate=1.08, pitch_st=2.0, pitch_range=1.4, volume=1.05, azure_style="cheerful"),
    Emotion("excited", rate=1.15, pitch_st=3.0, pitch_range=1.6, volume=1.15, azure_style="excited"),
    Emotion("calm", rate=0.92, pitch_st=-1.0, pitch_range=0.75, volume=0.9, azure_style="calm"),
    Emotion("sad", rate=0.85, pitch_st=-2.5, pitch_range=0.6, volume=0.85, azure_style="sad"),
    Emotion("angry", rate=1.08, pitch_st=1.0, pitch_range=1.5, volume=1.3, azure_style="angry"),
    Emotion("scared", rate=1.12, pitch_st=2.5, pitch_range=1.2, volume=0.95, azure_style="fearful"),
    Emotion("surprised", rate=1.05, pitch_st=3.0, pitch_range=1.7, volume=1.1, azure_style="excited"),
    Emotion("curious", rate=1.0, pitch_st=1.0, pitch_range=1.3, volume=1.0, azure_style="friendly"),
    Emotion("sympathetic", rate=0.9, pitch_st=-1.0, pitch_range=0.85, volume=0.9, azure_style="empathetic"),
    Emotion("confident", rate=1.0, pitch_st=-1.0, pitch_range=1.1, volume=1.1, azure_style="serious"),
    Emotion("disgusted", rate=0.92, pitch_st=-1.5, pitch_range=1.1, volume=1.0, azure_style="disgruntled"),
)})

#: other names for them (Cartesia's wider list, the hosted face's emotions, plain synonyms)
ALIASES: Mapping[str, str] = types.MappingProxyType({
    "happiness": "happy", "joy": "happy", "joyful": "happy", "cheerful": "happy", "content": "calm",
    "enthusiastic": "excited", "elated": "excited", "euphoric": "excited", "triumphant": "excited",
    "peaceful": "calm", "serene": "calm", "relaxed": "calm", "sadness": "sad", "dejected": "sad",
    "melancholic": "sad", "disappointed": "sad", "hurt": "sad", "anger": "angry", "mad": "angry",
    "outraged": "angry", "frustrated": "angry", "agitated": "angry", "fear": "scared", "afraid": "scared",
    "anxious": "scared", "panicked": "scared", "alarmed": "scared", "surprise": "surprised",
    "amazed": "surprised", "disgust": "disgusted", "contempt": "disgusted", "empathetic": "sympathetic",
    "apologetic": "sympathetic", "affectionate": "sympathetic", "determined": "confident",
    "proud": "confident", "contemplative": "curious", "none": "neutral", "default": "neutral",
})

#: joins the LLM's system prompt when emotion control is on
EMOTION_NOTE = (
    "You may set the tone of your voice by writing a tag such as <emotion value=\"happy\"/> right before "
    "the words it applies to. Values: " + ", ".join(n for n in EMOTIONS if n != "neutral") + ". Use a tag "
    "only when the feeling fits what you say; it is never read out."
)


def lookup(value: str | None) -> Emotion:
    """The emotion a tag's value means (neutral when empty or unknown)."""
    key = (value or "").strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    return EMOTIONS.get(key, NEUTRAL)


# a complete tag: <emotion value="x"/>, <emotion value='x'>, <emotion value=x />, </emotion>
_TAG_RE = re.compile(r"<\s*(/?)\s*emotion\b([^<>]*)>", re.IGNORECASE)
_VALUE_RE = re.compile(r"""\bvalue\s*=\s*["']?\s*([A-Za-z_-]*)""", re.IGNORECASE)
#: what may still grow into a tag ("<", "<emo", "</emotion valu")
_PARTIAL_RE = re.compile(r"<\s*/?\s*(?:e(?:m(?:o(?:t(?:i(?:o(?:n(?:\b[^<>]*)?)?)?)?)?)?)?)?$", re.IGNORECASE)
#: a tag longer than this is not one (an unclosed "<emotion" is then plain text)
_MAX_TAG = 120


def strip_tags(text: str) -> str:
    """``text`` without emotion tags (spaces around a removed tag collapse to one)."""
    return re.sub(r"[ \t]{2,}", " ", _TAG_RE.sub(" ", text)).strip() if "<" in text else text


class EmotionTagReader:
    """Streamed text in, ``(text, emotion)`` pieces out: ``emotion`` is None for text, or the
    name a tag just set (``"neutral"`` for a closing tag)."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> list[tuple[str, str | None]]:
        buf = self._held + text
        self._held = ""
        out: list[tuple[str, str | None]] = []
        pos = 0
        for m in _TAG_RE.finditer(buf):
            if m.start() > pos:
                out.append((buf[pos:m.start()], None))
            if m.group(1):
                out.append(("", NEUTRAL.name))
            else:
                value = _VALUE_RE.search(m.group(2))
                out.append(("", lookup(value.group(1) if value else "").name))
            pos = m.end()
        rest = buf[pos:]
        lt = rest.rfind("<")
        if lt >= 0 and len(rest) - lt <= _MAX_TAG and _PARTIAL_RE.match(rest[lt:]):
            rest, self._held = rest[:lt], rest[lt:]
        if rest:
            out.append((rest, None))
        return out

    def flush(self) -> str:
        """What was held as a possible tag, now known to be text."""
        held, self._held = self._held, ""
        return held


class EmotionalPhrases:
    """A reply's phrase splitter with emotion tags read out of its text: :meth:`push` text pieces
    and :meth:`flush` at the end; both give ``(phrase, emotion name)`` pairs. ``enabled`` False
    removes the tags and speaks every phrase in the voice's own manner ("neutral")."""

    def __init__(self, *, enabled: bool, splitter: PhraseSplitter | None = None) -> None:
        self.enabled = enabled
        self.splitter = splitter or PhraseSplitter()
        self.emotion = NEUTRAL.name
        self._tags = EmotionTagReader()

    def push(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for piece, emotion in self._tags.feed(text):
            if emotion is None:
                out += [(p, self.emotion) for p in self.splitter.push(piece)]
            elif self.enabled and emotion != self.emotion:
                # a change of manner ends the phrase before it
                out += [(p, self.emotion) for p in self.splitter.flush()]
                self.emotion = emotion
            elif not self.enabled and self.splitter.pending and not self.splitter.pending[-1:].isspace():
                # "word<tag/>word" must not run the words together
                out += [(p, self.emotion) for p in self.splitter.push(" ")]
        return out

    def flush(self) -> list[tuple[str, str]]:
        held = self._tags.flush()
        out = [(p, self.emotion) for p in self.splitter.push(held)] if held else []
        return out + [(p, self.emotion) for p in self.splitter.flush()]
