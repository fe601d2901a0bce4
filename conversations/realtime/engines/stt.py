"""Whisper base (CTranslate2, int8 on CPU) through faster-whisper's building blocks.

faster-whisper's ``transcribe()`` always pads the mel features to 30 s (``pad_or_trim`` is
hard-wired to 3000 frames), so every utterance costs a full 30 s encoder pass (~0.9 s
here). An utterance in a conversation is a few seconds long, so this engine runs the same
steps itself on a short window: 0.3 s of silence, the utterance, ~1 s of silence, at least
8 s in all (CTranslate2's Whisper encoder takes any even number of frames up to 3000).
Measured on 48 eSpeak utterances (3 voices): a 6 s window misheard most one-word replies
("Yes." -> "DF"); 8 s with the short lead-in got 39/48 exact at ~220 ms median, as good
as 10-20 s windows and ~4× cheaper than 30 s.

Guards against Whisper's repetition loops, which a short window makes more likely:
temperature 0 only (no sampling fallback: the fallback is what once took 12.8 s), a cap on
new tokens proportional to the audio's length, and a compression-ratio check that retries
once with an n-gram ban and otherwise collapses the repeated tail.

Audio longer than one window (28 s) is cut at its quietest points into pieces of at most
28 s, each decoded the same way.

One model per process, shared by every session; CTranslate2 calls are serialised by a lock
and run in a worker thread (``asyncio.to_thread``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from .base import STT_SAMPLE_RATE, EngineError, SpeechToText, Transcript, WordTiming
from .languages import language_code

__all__ = ["WhisperSTT", "language_code"]

logger = logging.getLogger(__name__)

#: silence put before the utterance: speech starting at t=0 is often misheard
LEAD_S = 0.3
#: silence appended after the utterance (Whisper expects the speech to end inside the window)
PAD_S = 1.0
#: shortest window: below this, recognition of very short words ("yes", "no") degrades
MIN_WINDOW_S = 8.0
#: longest single window (the model's positional embedding covers 30 s)
MAX_WINDOW_S = 28.0
#: compression ratio above which a transcript is treated as a repetition loop
COMPRESSION_RATIO_MAX = 2.4
#: more characters per second of audio than this is not speech but a loop (fast speech ~18)
MAX_CHARS_PER_S = 25.0
_HOP = 160  # samples per mel frame
_FRAME_PAIR = 2 * _HOP  # the encoder halves the frames: keep their number even


@dataclass(frozen=True)
class _Decoded:
    text: str
    tokens: list[int]
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    #: generation stopped at the token cap instead of ending by itself
    hit_cap: bool
    #: seconds of audio decoded
    duration: float

    @property
    def looped(self) -> bool:
        """A repetition loop: ran into the token cap, or a phrase repeated back to back three
        times in a text that is either highly compressible or too long for the audio
        (faster than anyone speaks). A repetitive but real monologue, or a real "no, no,
        no", is neither."""
        if self.hit_cap:
            return True
        if _REPEAT_RE.search(self.text) is None:
            return False
        too_fast = len(self.text.strip()) > MAX_CHARS_PER_S * max(self.duration, 0.5)
        return too_fast or self.compression_ratio > COMPRESSION_RATIO_MAX


def max_new_tokens_for(duration_s: float) -> int:
    """Token budget for an utterance: generous for fast speech (~4 words/s, ~2 tokens/word in
    most languages), far below a runaway loop's 224."""
    return int(min(200, 16 + 10 * duration_s))


#: previous text given to the decoder (tokens): enough context, far inside the 448-token window
MAX_PREVIOUS_TOKENS = 96


class WhisperSTT(SpeechToText):
    """Embedded Whisper (base, or tiny.en). ``transcribe`` is safe to call from many sessions
    at once. ``previous_text`` (what was said just before the audio) goes to the decoder as
    Whisper's "previous text" prompt, so a turn can be transcribed piece by piece."""

    name = "whisper-base"
    continues_text = True

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *, cpu_threads: int = 2,
                 beam_size: int = 1, compute_type: str = "int8", name: str | None = None,
                 languages: frozenset[str] = frozenset()) -> None:
        from faster_whisper import WhisperModel

        if name:
            self.name = name
        self.languages = languages

        if model_dir is None:
            from .models import ModelFileError, whisper_model_dir

            try:
                model_dir = whisper_model_dir()
            except ModelFileError as exc:
                raise EngineError(str(exc), engine=self.name) from exc
        try:
            self._model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                                       cpu_threads=cpu_threads, local_files_only=True)
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError on bad files
            raise EngineError(f"cannot load Whisper from {model_dir}: {exc}", engine=self.name) from exc
        self._beam_size = beam_size
        self._model_dir = str(model_dir)
        self._compute_type = compute_type
        self.cpu_threads = cpu_threads
        self._lock = threading.Lock()
        self._tokenizers: dict[str, object] = {}
        self._suppress: dict[str, list[int]] = {}

    def variant(self, *, beam_size: int | None = None, cpu_threads: int | None = None) -> WhisperSTT:
        """The same model loaded again with another beam size or thread count (benchmarks)."""
        return WhisperSTT(self._model_dir, cpu_threads=cpu_threads or self.cpu_threads,
                          beam_size=beam_size or self._beam_size, compute_type=self._compute_type,
                          name=self.name, languages=self.languages)

    # -- public API
    async def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                         hotwords: str | None = None, word_timestamps: bool = False,
                         previous_text: str | None = None) -> Transcript:
        return await asyncio.to_thread(self.transcribe_blocking, audio, language=language,
                                       hotwords=hotwords, word_timestamps=word_timestamps,
                                       previous_text=previous_text)

    def transcribe_blocking(self, audio: np.ndarray, *, language: str | None = None,
                            hotwords: str | None = None, word_timestamps: bool = False,
                            previous_text: str | None = None) -> Transcript:
        """Synchronous transcription (for worker threads, benchmarks and tests)."""
        try:
            lang = language_code(language)
        except ValueError as exc:
            raise EngineError(str(exc), engine=self.name, code="bad_language") from exc
        if self.languages and lang not in self.languages:
            raise EngineError(f"{self.name} hears only {', '.join(sorted(self.languages))}, not {lang or 'any language'}",
                              engine=self.name, code="bad_language")
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size == 0:
            return Transcript(text="", language=lang or "")
        started = time.perf_counter()
        try:
            with self._lock:
                text, lang_out, words = self._pieces(audio, lang, hotwords, word_timestamps,
                                                     previous_text or "")
        except EngineError:
            raise
        except Exception as exc:
            logger.exception("whisper transcription failed")
            raise EngineError(f"speech recognition failed: {exc}", engine=self.name) from exc
        elapsed = 1000.0 * (time.perf_counter() - started)
        return Transcript(text=text, language=lang_out, words=tuple(words), elapsed_ms=round(elapsed, 1))

    # -- one short window
    def _tokenizer(self, language: str):  # noqa: ANN202 - faster_whisper.tokenizer.Tokenizer
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tok = self._tokenizers.get(language)
        if tok is None:
            tok = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                            task="transcribe", language=language)
            self._tokenizers[language] = tok
            self._suppress[language] = get_suppressed_tokens(tok, [-1])
        return tok

    def _pieces(self, audio: np.ndarray, language: str | None, hotwords: str | None,
                word_timestamps: bool, previous_text: str = "") -> tuple[str, str, list[WordTiming]]:
        texts: list[str] = []
        words: list[WordTiming] = []
        for offset, piece in split_at_pauses(audio, int(MAX_WINDOW_S * STT_SAMPLE_RATE)):
            before = " ".join([previous_text, *texts]).strip()
            text, language, piece_words = self._short(piece, language, hotwords, word_timestamps, before)
            if text and before and copies_prompt(text, before):
                # Whisper wrote out part of its prompt instead of the piece ("The red car stopped
                # at the light." again, for "Then it began to rain."): hear the piece on its own
                logger.info("whisper copied its previous text %r; transcribing the piece without it", text)
                text, language, piece_words = self._short(piece, language, hotwords, word_timestamps, "")
            if text:
                texts.append(text)
            shift = 1000.0 * offset / STT_SAMPLE_RATE
            words.extend(WordTiming(w.word, round(w.start_ms + shift, 1), round(w.end_ms + shift, 1))
                         for w in piece_words)
        return " ".join(texts), (language or "") if texts else "", words

    def _short(self, audio: np.ndarray, language: str | None, hotwords: str | None,
               word_timestamps: bool, previous_text: str = "") -> tuple[str, str, list[WordTiming]]:
        bounds = speech_bounds(audio)
        if bounds is None:  # digital silence or a whisper of noise: nothing to hear
            return "", language or "", []
        onset, start, end = bounds
        text, language, words = self._window(audio[start:end], language, hotwords, word_timestamps,
                                             previous_text)
        if words:
            # Whisper's alignment puts the first word at the start of the window; the energy
            # onset is a better bound (words are moved back to the caller's timeline too)
            shift = 1000.0 * start / STT_SAMPLE_RATE
            first = max(words[0].start_ms + shift, 1000.0 * onset / STT_SAMPLE_RATE)
            words = [WordTiming(w.word, round(w.start_ms + shift, 1), round(w.end_ms + shift, 1))
                     for w in words]
            words[0] = WordTiming(words[0].word, round(min(first, words[0].end_ms), 1), words[0].end_ms)
        return text, language, words

    def _window(self, audio: np.ndarray, language: str | None, hotwords: str | None,
                word_timestamps: bool, previous_text: str = "") -> tuple[str, str, list[WordTiming]]:
        model = self._model
        duration = len(audio) / STT_SAMPLE_RATE
        lead = int(LEAD_S * STT_SAMPLE_RATE)
        window_s = min(30.0, max(MIN_WINDOW_S, LEAD_S + duration + PAD_S))
        n = int(round(window_s * STT_SAMPLE_RATE / _FRAME_PAIR)) * _FRAME_PAIR
        padded = np.zeros(n, np.float32)
        body = audio[: n - lead]
        padded[lead: lead + len(body)] = body
        # padding the *audio* with silence (not the features with zeros) is what Whisper saw
        # in training; the extractor adds one extra frame, which the slice drops
        features = model.feature_extractor(padded)[:, : n // _HOP]
        encoder_output = model.encode(features)

        if language is None:
            if model.model.is_multilingual:
                token, _prob = model.model.detect_language(encoder_output)[0][0]
                language = token[2:-2]
            else:
                language = "en"

        # word timings need Whisper's timestamp tokens: they anchor each segment's start, which
        # the cross-attention alignment alone gets wrong for the first word
        stamps = word_timestamps
        decoded = self._decode(encoder_output, language, hotwords, duration, timestamps=stamps,
                               no_repeat_ngram_size=0, previous_text=previous_text)
        if decoded.looped:
            logger.warning("whisper output looks like a repetition loop (%d tokens, ratio %.2f); "
                           "retrying with an n-gram ban", len(decoded.tokens), decoded.compression_ratio)
            retry = self._decode(encoder_output, language, hotwords, duration, timestamps=stamps,
                                 no_repeat_ngram_size=3, previous_text=previous_text)
            if not retry.looped or len(retry.tokens) < len(decoded.tokens):
                decoded = retry
        # silence or noise: Whisper is sure there is no speech and unsure of what it wrote
        if decoded.no_speech_prob > 0.6 and decoded.avg_logprob < -1.0:
            return "", language, []
        text = decoded.text.strip()
        if decoded.looped:
            text = collapse_repeats(text)
        else:
            # An utterance written out twice ("Yes. Yes.", "How far is it? How far is it") is the
            # decoder echoing itself inside the padded window, not what was said (seen with
            # tiny.en on sentences of 8+ words; a short one only below 2 s, where "No. No." is
            # usually the echo too).
            text = _collapse_doubled_sentence(text, min_words=1 if duration < 2.0 else 4)
        words: list[WordTiming] = []
        if word_timestamps and decoded.tokens and not decoded.looped:
            words = self._word_timings(decoded.tokens, language, encoder_output, n // _HOP,
                                       shift_ms=-1000.0 * LEAD_S, end_ms=1000.0 * duration)
        return text, language, words

    def _decode(self, encoder_output, language: str, hotwords: str | None, duration: float, *,  # noqa: ANN001
                timestamps: bool, no_repeat_ngram_size: int, previous_text: str = "") -> _Decoded:
        from faster_whisper.transcribe import get_compression_ratio

        model = self._model
        tok = self._tokenizer(language)
        hint = _trim_hotwords(hotwords)
        previous = tok.encode(" " + previous_text.strip())[-MAX_PREVIOUS_TOKENS:] if previous_text.strip() else []
        prompt = model.get_prompt(tok, previous, without_timestamps=not timestamps, hotwords=hint)
        max_new = max_new_tokens_for(duration) + (16 if timestamps else 0)
        max_length = min(model.max_length, len(prompt) + max_new)
        result = model.model.generate(
            encoder_output, [prompt],
            beam_size=self._beam_size, patience=1.0, length_penalty=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=no_repeat_ngram_size,
            max_length=max_length, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=self._suppress[language],
            # the first segment may start after the lead-in plus up to a second of silence
            max_initial_timestamp_index=int(round((LEAD_S + 1.0) / model.time_precision)),
        )[0]
        sequence = list(result.sequences_ids[0])
        hit_cap = len(prompt) + len(sequence) >= max_length
        text = tok.decode(sequence)  # drops timestamp tokens
        seq_len = len(sequence)
        avg_logprob = result.scores[0] * seq_len / (seq_len + 1) if result.scores else 0.0
        return _Decoded(text=text, tokens=[t for t in sequence if t != tok.eot], language=language,
                        avg_logprob=float(avg_logprob), no_speech_prob=float(result.no_speech_prob),
                        compression_ratio=get_compression_ratio(text.strip()) if text.strip() else 0.0,
                        hit_cap=hit_cap, duration=duration)

    def _word_timings(self, tokens: list[int], language: str, encoder_output,  # noqa: ANN001
                      num_frames: int, *, shift_ms: float, end_ms: float) -> list[WordTiming]:
        """faster-whisper's own alignment (cross-attention + DTW, with its clamps that use
        the segment timestamps), moved from window time to the caller's audio time."""
        model = self._model
        tok = self._tokenizer(language)
        segments, _seek, _single = model._split_segments_by_timestamps(
            tokenizer=tok, tokens=tokens, time_offset=0.0, segment_size=num_frames,
            segment_duration=num_frames * _HOP / STT_SAMPLE_RATE, seek=0)
        model.add_word_timestamps([segments], tok, encoder_output, num_frames,
                                  "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、", last_speech_timestamp=0.0)
        words: list[WordTiming] = []
        for segment in segments:
            for w in segment.get("words") or []:
                word = w["word"].strip()
                start = 1000.0 * float(w["start"]) + shift_ms
                if not word or start > end_ms:  # a "word" in the padding is a hallucination
                    continue
                end = min(end_ms, 1000.0 * float(w["end"]) + shift_ms)
                words.append(WordTiming(word=word, start_ms=round(max(0.0, start), 1),
                                        end_ms=round(max(0.0, end), 1)))
        return words


#: a 20 ms frame is "voiced" above this RMS (about -54 dBFS) and within 35 dB of the loudest
_FLOOR_RMS = 0.002
_RELATIVE_DB = 35.0


def speech_bounds(audio: np.ndarray) -> tuple[int, int, int] | None:
    """(onset, start, end) samples: the first voiced sample, and the span to transcribe
    (100 ms before the onset to 300 ms after the last voiced frame). None when nothing is
    voiced. Long silences around an utterance only cost encoder time and invite
    hallucinations; a fixed lead-in is then added back by the window."""
    frame = STT_SAMPLE_RATE // 50
    n = len(audio) // frame
    if n == 0:
        return None
    rms = np.sqrt((audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1))
    peak = float(rms.max())
    if peak < _FLOOR_RMS:
        return None
    voiced = np.flatnonzero(rms >= max(_FLOOR_RMS, peak * 10 ** (-_RELATIVE_DB / 20)))
    onset = int(voiced[0]) * frame
    start = max(0, onset - STT_SAMPLE_RATE // 10)
    end = min(len(audio), (int(voiced[-1]) + 1) * frame + 3 * STT_SAMPLE_RATE // 10)
    return onset, start, end


def split_at_pauses(audio: np.ndarray, max_samples: int) -> list[tuple[int, np.ndarray]]:
    """Cut audio longer than ``max_samples`` at its quietest 100 ms in the last quarter of
    each piece; returns (offset, piece) pairs."""
    pieces: list[tuple[int, np.ndarray]] = []
    start = 0
    frame = STT_SAMPLE_RATE // 10
    while len(audio) - start > max_samples:
        lo = start + (3 * max_samples) // 4
        region = audio[lo: start + max_samples]
        n = len(region) // frame
        energy = (region[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        pieces.append((start, audio[start:cut]))
        start = cut
    pieces.append((start, audio[start:]))
    return pieces


def _trim_hotwords(hotwords: str | None, max_chars: int = 400) -> str | None:
    """Hotwords become Whisper's "previous text" prompt; keep them short so the prompt plus
    the token budget stay inside the 448-token context."""
    if not hotwords or not hotwords.strip():
        return None
    return " ".join(hotwords.split())[:max_chars]


_REPEAT_RE = re.compile(r"(\b.{2,80}?)(?:[\s,.!?]*\1){2,}", re.IGNORECASE | re.DOTALL)


def copies_prompt(text: str, previous_text: str, *, min_words: int = 3) -> bool:
    """Whether ``text`` (at least ``min_words`` words) is word for word a run of ``previous_text``."""
    words = re.findall(r"[\w']+", text.lower())
    before = re.findall(r"[\w']+", previous_text.lower())
    if len(words) < min_words:
        return False
    n = len(words)
    return any(before[i: i + n] == words for i in range(len(before) - n + 1))


def _collapse_doubled_sentence(text: str, *, min_words: int = 1) -> str:
    """An utterance written out twice is said once; so is one followed by the start of itself
    cut off by the end of the window ("I would like a coffee with milk. I would like a coffee",
    seen with tiny.en: at least 4 words, and never a whole other sentence)."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text) if p]
    if len(parts) == 2:
        a, b = (re.sub(r"[^\w\s']", "", p).lower().split() for p in parts)
        if a == b and len(a) >= min_words:
            return parts[0].strip()
        if len(b) >= max(4, min_words) and len(b) < len(a) and a[: len(b)] == b and not re.search(r"[.!?]$", parts[1]):
            return parts[0].strip()
    return text


def collapse_repeats(text: str) -> str:
    """Collapse a phrase repeated three or more times in a row to one occurrence."""
    previous = None
    while previous != text:
        previous = text
        text = _REPEAT_RE.sub(r"\1", text)
    return text.strip()
