"""Speech timings from every engine's alphabet, in the one the face reads, and the cutting of a
timed audio stream into chunks.

The face renderer reads eSpeak NG phoneme mnemonics (``faces/renderer.py``). Engines time
their speech in other units:
- Piper and Cartesia: IPA phonemes (:func:`ipa_mnemonic`);
- Azure: viseme ids 0–21 (:data:`AZURE_VISEMES`), each a class of phonemes with one mouth shape;
- ElevenLabs: the characters of the text (:func:`letter_phonemes`): a letter is a rough guide
  to the sound, but its time is real, so the mouth opens and closes with the speech.

:class:`TimedChunker` turns a remote engine's stream (audio bytes, and word and phoneme times
from the start of the phrase's audio) into :class:`TTSChunk` pieces cut at word ends, each with
its own text and timings relative to its start: the renderer moves the mouth with them and the
pipeline knows which words were heard when a reply is interrupted.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from .base import PhonemeTiming, TTSChunk, WordTiming

PAUSE = "_"

# --------------------------------------------------------------------------- IPA
#: two-codepoint IPA units first (diphthongs, affricates, long vowels), then single ones
IPA_PAIRS = {
    "aɪ": "aI", "aʊ": "aU", "eɪ": "eI", "oʊ": "oU", "ɔɪ": "OI", "əʊ": "oU", "tʃ": "tS", "dʒ": "dZ",
    "ɑː": "A:", "ɔː": "O:", "iː": "i:", "uː": "u:", "ɜː": "3:",
}
IPA = {
    "ə": "@", "ɚ": "3", "ɜ": "3:", "ɝ": "3:", "æ": "a", "a": "a", "ɐ": "a#", "ɑ": "A:", "ɒ": "0",
    "ɔ": "O:", "ʌ": "V", "ɛ": "E", "e": "e", "ɪ": "I", "ᵻ": "I#", "i": "i", "ʊ": "U", "u": "u:",
    "o": "o", "p": "p", "b": "b", "m": "m", "f": "f", "v": "v", "θ": "T", "ð": "D", "s": "s",
    "z": "z", "ʃ": "S", "ʒ": "Z", "t": "t", "d": "d", "n": "n", "l": "l", "k": "k", "ɡ": "g",
    "g": "g", "ŋ": "N", "h": "h", "x": "x", "ɹ": "r", "r": "r", "ɾ": "t#", "ʔ": "?", "j": "j", "w": "w",
}
#: marks that belong to a neighbour (stress, length, palatalisation, syllabic, nasal)
IPA_MARKS = frozenset("ˈˌːʲ\u0329\u0303")


def ipa_mnemonic(symbol: str) -> str:
    """One IPA phoneme (possibly with stress or length marks, e.g. ``ˈoʊ``) as an eSpeak
    mnemonic; an unknown symbol is returned as it is (the renderer treats it as neutral)."""
    core = "".join(ch for ch in symbol if ch not in "ˈˌ")
    if core in IPA_PAIRS:
        return IPA_PAIRS[core]
    bare = "".join(ch for ch in core if ch not in IPA_MARKS)
    if bare in IPA_PAIRS:
        return IPA_PAIRS[bare]
    if bare[:1] in IPA:
        return IPA[bare[:1]]
    return PAUSE if not bare.strip() else bare


# --------------------------------------------------------------------------- Azure visemes
#: Azure Speech viseme ids (en-US) → an eSpeak mnemonic with the same mouth shape
#: (0 silence; 1 æ ə ʌ; 2 ɑ; 3 ɔ; 4 ɛ ʊ; 5 ɝ; 6 j i ɪ; 7 w u; 8 o; 9 aʊ; 10 ɔɪ; 11 aɪ; 12 h;
#: 13 ɹ; 14 l; 15 s z; 16 ʃ tʃ dʒ ʒ; 17 ð; 18 f v; 19 d t n θ; 20 k g ŋ; 21 p b m)
AZURE_VISEMES: dict[int, str] = {
    0: PAUSE, 1: "V", 2: "A:", 3: "O:", 4: "E", 5: "3:", 6: "i", 7: "u:", 8: "o", 9: "aU",
    10: "OI", 11: "aI", 12: "h", 13: "r", 14: "l", 15: "s", 16: "S", 17: "D", 18: "f", 19: "t",
    20: "k", 21: "p",
}


def azure_viseme(viseme_id: int) -> str:
    return AZURE_VISEMES.get(int(viseme_id), "t")


# --------------------------------------------------------------------------- letters
_LETTER_PAIRS = {"th": "T", "sh": "S", "ch": "tS", "ph": "f", "oo": "u:", "ee": "i:", "ou": "aU",
                 "ow": "aU", "ai": "eI", "ay": "eI", "oy": "OI", "oi": "OI", "ng": "N", "wh": "w"}
_LETTERS = {
    "a": "a", "e": "E", "i": "I", "o": "0", "u": "V", "y": "I",
    "b": "b", "p": "p", "m": "m", "f": "f", "v": "v", "w": "w", "r": "r", "l": "l", "j": "dZ",
    "s": "s", "z": "z", "c": "k", "k": "k", "g": "g", "q": "k", "x": "s", "h": "h",
    "t": "t", "d": "d", "n": "n",
}


def letter_phonemes(chars: Sequence[str], starts_ms: Sequence[float]) -> list[PhonemeTiming]:
    """Character timings (ElevenLabs' alignment) as phoneme timings: letter pairs that make one
    sound ("th", "oo") become one phoneme; spaces and punctuation become pauses; digits and
    other scripts keep the mouth moderately open."""
    out: list[PhonemeTiming] = []
    i = 0
    while i < len(chars):
        ch = chars[i].lower()
        pair = ch + chars[i + 1].lower() if i + 1 < len(chars) else ""
        if pair in _LETTER_PAIRS:
            out.append(PhonemeTiming(_LETTER_PAIRS[pair], starts_ms[i]))
            i += 2
            continue
        if ch in _LETTERS:
            name = _LETTERS[ch]
        elif ch.isalnum():
            name = "@"
        else:
            name = PAUSE
        if not (name == PAUSE and out and out[-1].phoneme == PAUSE):
            out.append(PhonemeTiming(name, starts_ms[i]))
        i += 1
    return out


#: a written word (a run of non-space characters), and the punctuation stripped from its ends
#: (apostrophes inside stay): how every engine pairs its timings with the words of the text
WORD_RE = re.compile(r"\S+")
EDGE_PUNCT = "\"'“”‘’«»()[]{}<>.,;:!?¿¡…-–—*_/\\"


def words_from_characters(chars: Sequence[str], starts_ms: Sequence[float], ends_ms: Sequence[float],
                          offset: int = 0) -> list[WordTiming]:
    """Words (runs of non-space characters) with their times; ``char_start`` counts from
    ``offset`` (the index in the phrase of ``chars[0]``)."""
    text = "".join(chars)
    words = []
    for m in WORD_RE.finditer(text):
        token = m.group()
        word = token.strip(EDGE_PUNCT)
        if not word:
            continue
        first = m.start() + token.index(word)
        last = first + len(word) - 1
        words.append(WordTiming(word=word, start_ms=starts_ms[first], end_ms=ends_ms[last],
                                char_start=offset + first, char_len=len(word)))
    return words


def locate_words(text: str, words: Iterable[tuple[str, float, float]], start: int = 0
                 ) -> tuple[list[WordTiming], int]:
    """Place spoken words (``(word, start_ms, end_ms)``, as an engine reports them) in ``text``
    in order from ``start``; a word not found there keeps ``char_start`` -1. Returns the words
    and the index just after the last one found."""
    out = []
    pos = start
    for word, begin, end in words:
        bare = word.strip(EDGE_PUNCT) or word
        at = text.find(bare, pos)
        if at < 0:
            out.append(WordTiming(word=bare, start_ms=begin, end_ms=end))
            continue
        out.append(WordTiming(word=bare, start_ms=begin, end_ms=end, char_start=at, char_len=len(bare)))
        pos = at + len(bare)
    return out, pos


# --------------------------------------------------------------------------- chunking
class TimedChunker:
    """Collects a phrase's streamed audio (s16le bytes) and timings, and hands back chunks cut
    at the end of each word whose audio has fully arrived.

    Word and phoneme times count from the start of the phrase's audio; ``WordTiming.char_start``
    indexes the phrase ``text`` (-1 when unknown). Each chunk gets the text from its first
    word to the next chunk's, and timings relative to its own start. A stream that carries no
    timings at all (``untimed_after_ms`` of audio and none yet) is passed on in pieces of
    ``piece_ms`` with no timings (the face then follows the audio's loudness).
    """

    def __init__(self, text: str, sample_rate: int, *, piece_ms: float = 100.0,
                 untimed_after_ms: float = 600.0) -> None:
        self.text = text
        self.sample_rate = sample_rate
        self.piece_samples = max(1, int(sample_rate * piece_ms / 1000))
        self.untimed_after_ms = untimed_after_ms
        self._pcm = bytearray()  # audio not yet handed out
        self._bytes_in = 0
        self._start_ms = 0.0  # phrase time of the first sample in _pcm
        self._words: list[WordTiming] = []  # not yet handed out
        self._phonemes: list[PhonemeTiming] = []
        self._last_phoneme: PhonemeTiming | None = None  # the one sounding at _start_ms
        self._text_pos = 0  # index in text where the next chunk's text starts
        self._timed = False
        self._untimed = False  # gave up waiting for timings: the rest goes on without them
        self._phonemes_seen = False
        self._phonemes_until = 0.0  # the latest phoneme start received
        self._chunks = 0

    # ------------------------------------------------------------------ input
    def add_audio(self, data: bytes) -> None:
        self._pcm += data
        self._bytes_in += len(data)

    def add_words(self, words: Iterable[WordTiming]) -> None:
        if self._untimed:
            return  # the audio already went on without timings: it keeps going that way
        self._words += words
        self._timed = True

    def add_phonemes(self, phonemes: Iterable[PhonemeTiming]) -> None:
        if self._untimed:
            return
        for p in phonemes:
            self._phonemes.append(p)
            self._phonemes_until = max(self._phonemes_until, p.start_ms)
            self._phonemes_seen = self._timed = True

    @property
    def audio_ms(self) -> float:
        return 1000.0 * (self._bytes_in // 2) / self.sample_rate

    # ------------------------------------------------------------------ output
    def chunks(self, *, final: bool = False) -> list[TTSChunk]:
        """The chunks that can be handed out now (all that is left when ``final``)."""
        out: list[TTSChunk] = []
        if not self._timed:
            if self.audio_ms < self.untimed_after_ms and not final:
                return out
            self._untimed = True
            while len(self._pcm) // 2 >= self.piece_samples:
                out.append(self._cut(self.piece_samples, untimed=True))
            if final and (len(self._pcm) >= 2 or self._chunks == 0):
                out.append(self._cut(len(self._pcm) // 2, untimed=True))
            return out
        while True:
            end = self.audio_ms
            ready = [w for w in self._words if w.end_ms <= end]
            if not ready:
                break
            # cut after the last word that has all its audio, unless a later word started
            # already, or the phoneme timings (which some services send late) do not reach it
            cut_ms = ready[-1].end_ms
            later = [w for w in self._words if w.end_ms > end]
            if later and later[0].start_ms < cut_ms:
                break
            if self._phonemes_seen and self._phonemes_until < cut_ms:
                break
            samples = int(round((cut_ms - self._start_ms) * self.sample_rate / 1000))
            if samples <= 0:
                self._words = later
                continue
            out.append(self._cut(samples, words=len(ready)))
        if final:
            if len(self._pcm) >= 2 or self._text_pos < len(self.text.strip()):
                out.append(self._cut(len(self._pcm) // 2, words=len(self._words), last=True))
        return out

    def _cut(self, samples: int, *, words: int = 0, untimed: bool = False, last: bool = False) -> TTSChunk:
        samples = min(samples, len(self._pcm) // 2)
        pcm = np.frombuffer(bytes(self._pcm[: samples * 2]), "<i2").copy()
        del self._pcm[: samples * 2]
        start = self._start_ms
        end = start + 1000.0 * samples / self.sample_rate
        self._start_ms = end
        if untimed:
            text = self.text if self._chunks == 0 else ""
            self._chunks += 1
            return TTSChunk(pcm=pcm, sample_rate=self.sample_rate, text=text)
        mine, self._words = self._words[:words], self._words[words:]
        # this chunk's text runs to where the next word starts (its punctuation stays with it)
        if last:
            text_end = len(self.text)
        else:
            nxt = next((w.char_start for w in self._words if w.char_start >= 0), -1)
            if nxt >= 0:
                text_end = nxt
            elif mine and mine[-1].char_start >= 0:
                # the next word is not known yet: the word's own punctuation ("today?") goes with it
                text_end = mine[-1].char_start + mine[-1].char_len
                while text_end < len(self.text) and not self.text[text_end].isspace():
                    text_end += 1
            else:
                text_end = self._text_pos
        text_start = self._text_pos
        chunk_text = self.text[text_start:text_end]
        lead = len(chunk_text) - len(chunk_text.lstrip())
        self._text_pos = max(text_end, text_start)
        rel_words = [WordTiming(word=w.word, start_ms=max(0.0, w.start_ms - start), end_ms=max(0.0, w.end_ms - start),
                                char_start=w.char_start - text_start - lead if w.char_start >= 0 else -1,
                                char_len=w.char_len) for w in mine]
        phonemes: list[PhonemeTiming] = []
        keep = []
        for p in sorted(self._phonemes, key=lambda p: p.start_ms):
            if p.start_ms < start:
                self._last_phoneme = p  # arrived after its audio had gone: it only sets the mouth at the start
            elif p.start_ms < end or last:
                phonemes.append(PhonemeTiming(p.phoneme, p.start_ms - start))
            else:
                keep.append(p)
        # the phoneme sounding where the chunk starts (unless one starts right there)
        if self._last_phoneme is not None and not (phonemes and phonemes[0].start_ms <= 0.0):
            phonemes.insert(0, PhonemeTiming(self._last_phoneme.phoneme, 0.0))
        if phonemes:
            self._last_phoneme = PhonemeTiming(phonemes[-1].phoneme, start + phonemes[-1].start_ms)
        self._phonemes = keep
        self._chunks += 1
        return TTSChunk(pcm=pcm, sample_rate=self.sample_rate, text=chunk_text.strip(), words=rel_words,
                        phonemes=phonemes)
