"""Split streamed LLM text into phrases for the TTS.

The first phrase of a reply decides how soon the replica starts talking, so it is cut at
the first natural clause boundary ("Sure," / "Well, the thing is," / a sentence end); the
rest are cut at sentence ends (or at a clause boundary once a phrase gets long), which keeps
the voice's sentence prosody. Text with no punctuation at all is cut before a conjunction
or, at worst, at a word boundary, so the first phrase never waits for the whole reply.
"""
from __future__ import annotations

import re

_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx",
    "no", "fig", "mt", "inc", "ltd", "co", "u.s", "u.k", "a.m", "p.m",
})
_SENTENCE_END = ".!?…"
_CLAUSE_END = ",;:—–"
_CLOSERS = "\"'”’)]"
# a long first phrase may be cut before these (the clause or phrase they open goes on)
_CUT_BEFORE = frozenset({"and", "but", "so", "because", "or", "which", "that", "when", "while",
                         "then", "although", "though", "if", "with", "for", "in", "on", "at",
                         "from", "by", "about", "after", "before", "during", "until", "since"})

_MARKDOWN_RE = re.compile(r"(\*\*|__|\*|`+|^#+\s*|^\s*[-*•]\s+)", re.MULTILINE)
_SPACES_RE = re.compile(r"\s+")
_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")  # [text](url) -> text
_URL_RE = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# double quotes of any kind, and single quotes that open or close a quotation (not apostrophes)
_QUOTES_RE = re.compile(r"[\"“”„«»]|(?<!\w)['‘’]|['‘’](?!\w)")


def clean_for_speech(text: str) -> str:
    """Remove what a voice would read out or choke on: markdown marks, link targets and bare
    URLs (a link is read as its text; a bare URL as "the link"), quote marks (apostrophes stay),
    and emoji."""
    text = _LINK_RE.sub(r"\1", text)
    text = _URL_RE.sub("the link", text)
    text = _QUOTES_RE.sub("", text)
    text = _MARKDOWN_RE.sub("", text)
    text = "".join(ch for ch in text if not _is_symbol_emoji(ch))
    return _SPACES_RE.sub(" ", text).strip()


def _is_symbol_emoji(ch: str) -> bool:
    cp = ord(ch)
    return 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or cp in (0xFE0F, 0x200D)


class PhraseSplitter:
    """Feed text pieces with :meth:`push`, get complete phrases back; :meth:`flush` at the end.

    ``first_min_words``: words a first phrase needs before a clause mark may end it.
    ``first_cut_words``: a first phrase with no punctuation is cut before a conjunction or
    preposition once it has this many words, and at a word boundary at ``first_max_words``.
    ``max_chars``: later phrases are cut at a clause mark past this length.
    """

    def __init__(self, *, first_min_words: int = 1, first_cut_words: int = 4,
                 first_max_words: int = 12,
                 max_words: int = 40, max_chars: int = 160) -> None:
        self.first_min_words = first_min_words
        self.first_cut_words = first_cut_words
        self.first_max_words = first_max_words
        self.max_words = max_words
        self.max_chars = max_chars
        self._buf = ""
        self._emitted = 0

    @property
    def pending(self) -> str:
        return self._buf

    def reset(self) -> None:
        self._buf = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            phrase, self._buf = self._buf[:cut], self._buf[cut:].lstrip()
            phrase = clean_for_speech(phrase)
            if phrase and any(ch.isalnum() for ch in phrase):
                out.append(phrase)
                self._emitted += 1
            elif phrase and out:
                out[-1] += phrase  # stray punctuation belongs to the phrase before
        return out

    def flush(self) -> list[str]:
        phrase = clean_for_speech(self._buf)
        self._buf = ""
        if phrase and any(ch.isalnum() for ch in phrase):
            self._emitted += 1
            return [phrase]
        return []

    # ------------------------------------------------------------------ internals
    def _find_cut(self) -> int | None:
        """Index just after the end of the next complete phrase in the buffer, or None."""
        buf = self._buf
        first = self._emitted == 0
        words_before = 0
        in_word = False
        for i, ch in enumerate(buf):
            if ch == "\n" and words_before:
                return i + 1  # a line break (list item, heading) always ends a phrase
            if ch.isspace():
                in_word = False
                continue
            if not in_word:
                in_word = True
                words_before += 1
            if ch in _SENTENCE_END or ch in _CLAUSE_END:
                end = i + 1
                while end < len(buf) and buf[end] in _CLOSERS:
                    end += 1
                if end >= len(buf):
                    return None  # wait for what follows: "3.5", "e.g.", "..." may go on
                if not buf[end].isspace():
                    continue  # "3.5", "U.S.A", "well,no" (a cut needs whitespace after)
                if ch in _SENTENCE_END:
                    if ch == "." and self._is_abbreviation(buf[:i]):
                        continue
                    return end
                # a clause mark
                if first and words_before >= self.first_min_words:
                    return end
                if not first and len(buf[:end]) >= self.max_chars:
                    return end
        # no punctuation cut: bound the phrase length
        limit = self.first_max_words if first else self.max_words
        words = list(re.finditer(r"\S+", buf))
        # the last word may still be growing unless whitespace follows it
        complete_words = words if buf[-1:].isspace() else words[:-1]
        if first and len(complete_words) > self.first_cut_words:
            for m in complete_words[self.first_cut_words:]:
                if m.group().lower().strip(",.") in _CUT_BEFORE and m.start() > 0:
                    return m.start()
        if len(complete_words) >= limit:
            return complete_words[limit - 1].end()
        return None

    @staticmethod
    def _is_abbreviation(before: str) -> bool:
        token = before.split()[-1] if before.split() else ""
        raw = token.lstrip("\"'(")
        if raw.lower() in _ABBREVIATIONS:
            return True
        if len(raw) == 1 and raw.isupper() and raw != "I":
            return True  # an initial: "J. R. R. Tolkien"
        # a list item ("1. First ...") opening the phrase
        return raw.isdigit() and len(before.split()) == 1
