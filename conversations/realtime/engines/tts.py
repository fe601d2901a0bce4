"""eSpeak NG text to speech through its C library (ctypes), with word and phoneme timings.

The library and its data come from the ``espeakng-loader`` wheel (libespeak-ng 1.52), so no
system package is needed. eSpeak NG keeps global state (one voice, one callback), so every
synthesis in the process is serialised by one lock and runs in a worker thread; a 12-word
sentence takes ~14 ms, so the lock is never held for long.

Streaming: the text is synthesised in one ``espeak_Synth`` call and cut at eSpeak's own
sentence boundaries, each sentence becoming one ``TTSChunk`` as soon as its audio is
complete. The pipeline normally sends one phrase at a time, which gives one chunk.

Timings: eSpeak reports WORD events (character position in the text, sample position) and
PHONEME events (phoneme mnemonic, sample position). Words are mapped back onto the
whitespace-separated words of the text (``WordTiming.char_start``/``char_len`` index into
``TTSChunk.text``), so the pipeline can keep in the history exactly the words that were
played. Phoneme names are eSpeak's ASCII mnemonics with stress marks removed; ``"_"``
(also ``"_:"``, ``"_!"``) is a pause.
"""
from __future__ import annotations

import asyncio
import bisect
import ctypes
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from ..emotion import NEUTRAL, Emotion, lookup
from .base import EngineError, PhonemeTiming, TextToSpeech, TTSChunk, VoiceOptions, WordTiming
from .languages import language_code
from .timings import EDGE_PUNCT, WORD_RE

logger = logging.getLogger(__name__)

#: eSpeak's normal speaking rate (words per minute); VoiceOptions.speed multiplies it
NORMAL_RATE_WPM = 175
_MIN_RATE, _MAX_RATE = 80, 450

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES = 0x100
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
#: eSpeak's neutral pitch, intonation range (0-100) and volume (0-200) settings
_NORMAL_PITCH, _NORMAL_RANGE, _NORMAL_VOLUME = 50, 50, 100
#: pitch setting steps per semitone (eSpeak scales its base pitch exponentially: 0 is an octave
#: below 50, 100 an octave above)
_PITCH_PER_SEMITONE = 50 / 12
_EV_LIST_TERMINATED, _EV_WORD, _EV_SENTENCE, _EV_END, _EV_MSG_TERMINATED, _EV_PHONEME = 0, 1, 2, 5, 6, 7
_EE_OK = 0


class _Event(ctypes.Structure):
    # espeak_EVENT; ``id`` is a union {int number; const char* name; char string[8]}
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))

_SENTENCE_END_RE = re.compile(r"[.!?…。！？]['\"”’)\]]*\s*$")


@dataclass
class _Job:
    """State of the one synthesis in progress (touched only by the synth thread)."""

    text: str
    sample_rate: int
    emit: Callable[[TTSChunk], None]
    cancelled: threading.Event
    audio: list[np.ndarray] = field(default_factory=list)
    received: int = 0  # samples received so far (whole synthesis)
    chunk_start_sample: int = 0
    chunk_start_char: int = 0
    words: list[tuple[int, int]] = field(default_factory=list)  # (char index, sample)
    phonemes: list[tuple[str, int]] = field(default_factory=list)  # (name, sample)
    # sentence starts not yet cut, as (char index, sample)
    pending_cuts: list[tuple[int, int]] = field(default_factory=list)


class _Espeak:
    """The process-wide C library handle. Use only while holding ``lock``."""

    lock = threading.Lock()
    _instance: _Espeak | None = None

    def __init__(self, library_path: str | None, data_path: str | None) -> None:
        if library_path is None or data_path is None:
            try:
                import espeakng_loader
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise EngineError("espeak-ng is not available: install espeakng-loader",
                                  engine="espeak-ng") from exc
            library_path = library_path or espeakng_loader.get_library_path()
            data_path = data_path or espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise EngineError(f"cannot load the espeak-ng library: {exc}", engine="espeak-ng") from exc
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        # buflength 0 = eSpeak's default (200 ms of audio per callback)
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                            _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if sample_rate <= 0:
            raise EngineError(f"espeak-ng failed to initialise (data at {data_path})", engine="espeak-ng")
        self.lib = lib
        self.sample_rate = sample_rate
        self.job: _Job | None = None
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds a raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    @classmethod
    def get(cls, library_path: str | None = None, data_path: str | None = None) -> _Espeak:
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls(library_path, data_path)
            return cls._instance

    # -- called from C, in the synth thread, while the lock is held
    def _on_synth(self, wav, numsamples, events) -> int:  # noqa: ANN001 - ctypes pointers
        job = self.job
        if job is None:
            return 1
        try:
            if numsamples > 0 and wav:
                job.audio.append(np.ctypeslib.as_array(wav, (numsamples,)).copy())
                job.received += numsamples
            i = 0
            while events[i].type != _EV_LIST_TERMINATED:
                ev = events[i]
                i += 1
                if ev.type == _EV_WORD:
                    job.words.append((ev.text_position - 1, ev.sample))
                elif ev.type == _EV_PHONEME:
                    job.phonemes.append((ev.id.decode("utf-8", "replace"), ev.sample))
                elif ev.type == _EV_SENTENCE and ev.text_position - 1 > job.chunk_start_char:
                    job.pending_cuts.append((ev.text_position - 1, ev.sample))
                if ev.type == _EV_MSG_TERMINATED:
                    break
            while job.pending_cuts and job.pending_cuts[0][1] <= job.received:
                char, sample = job.pending_cuts.pop(0)
                _emit_chunk(job, end_char=char, end_sample=sample)
        except Exception:  # never let an exception cross the C boundary
            logger.exception("espeak-ng callback failed")
            return 1
        return 1 if job.cancelled.is_set() else 0

    def set_voice(self, name: str) -> None:
        if name == self._voice:
            return
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            # "en-gb+m3" -> "en+m3": eSpeak names some regional voices differently
            # ("en-gb-x-rp"); the language's main voice is a better answer than an error
            base, plus, variant = name.partition("+")
            fallback = base.split("-", 1)[0] + plus + variant
            if fallback == name or self.lib.espeak_SetVoiceByName(fallback.encode()) != _EE_OK:
                self._voice = None
                raise EngineError(f"unknown espeak-ng voice: {name!r}", engine="espeak-ng",
                                  code="bad_voice")
            logger.warning("espeak-ng has no voice %r; using %r", name, fallback)
        self._voice = name

    def synth(self, job: _Job, voice: str, rate: int, emotion: Emotion = NEUTRAL) -> None:
        """Run one synthesis to the end (or until cancelled). Caller holds ``lock``. The
        emotion's pitch, range and volume are set every time (eSpeak keeps them globally)."""
        self.set_voice(voice)
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        pitch = _NORMAL_PITCH + emotion.pitch_st * _PITCH_PER_SEMITONE
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(round(min(100.0, max(0.0, pitch)))), 0)
        self.lib.espeak_SetParameter(_PARAM_RANGE, int(round(min(100.0, _NORMAL_RANGE * emotion.pitch_range))), 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, int(round(min(200.0, _NORMAL_VOLUME * emotion.volume))), 0)
        flags = _CHARS_UTF8
        if "[[" in job.text:
            # phonemes of a pronunciation dictionary's IPA rule, as [[mnemonics]] (pronounce.py)
            flags |= _PHONEMES
        if _SENTENCE_END_RE.search(job.text):
            # a full sentence ends with its natural pause; a clause ("Well,") runs on
            flags |= _ENDPAUSE
        data = job.text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        self.job = job
        try:
            rc = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
        finally:
            self.job = None
        if job.cancelled.is_set():
            return
        if rc != _EE_OK:
            raise EngineError(f"espeak-ng synthesis failed (code {rc})", engine="espeak-ng")
        for char, sample in job.pending_cuts:
            _emit_chunk(job, end_char=char, end_sample=sample)
        job.pending_cuts.clear()
        _emit_chunk(job, end_char=len(job.text), end_sample=job.received, last=True)


def _emit_chunk(job: _Job, *, end_char: int, end_sample: int, last: bool = False) -> None:
    """Cut the audio received so far at ``end_sample`` into one TTSChunk and hand it on."""
    audio = np.concatenate(job.audio) if job.audio else np.zeros(0, np.int16)
    cut = end_sample - job.chunk_start_sample
    pcm, rest = audio[:cut], audio[cut:]
    job.audio = [rest] if len(rest) else []
    start_sample, start_char = job.chunk_start_sample, job.chunk_start_char
    text = job.text[start_char:end_char]
    words = [(c, s) for c, s in job.words if s < end_sample or last]
    phonemes = [(p, s) for p, s in job.phonemes if s < end_sample or last]
    job.words = job.words[len(words):]
    job.phonemes = job.phonemes[len(phonemes):]
    job.chunk_start_sample, job.chunk_start_char = end_sample, end_char
    if not text.strip() and not len(pcm):
        return
    sr = job.sample_rate

    def ms(sample: int) -> float:
        return 1000.0 * max(0, sample - start_sample) / sr

    phoneme_timings = [PhonemeTiming(_clean_phoneme(p), ms(s)) for p, s in phonemes]
    pauses = [s for p, s in phonemes if p.startswith("_")]
    word_timings = _word_timings(text, start_char, words, pauses, end_sample=start_sample + len(pcm),
                                 to_ms=ms)
    job.emit(TTSChunk(pcm=pcm.astype(np.int16, copy=False), sample_rate=sr, text=text,
                      words=word_timings, phonemes=phoneme_timings))


def _clean_phoneme(name: str) -> str:
    return name.lstrip("',%=") or name


def _word_timings(text: str, offset: int, events: list[tuple[int, int]], pauses: list[int], *,
                  end_sample: int, to_ms: Callable[[int], float]) -> list[WordTiming]:
    """Map eSpeak word events (absolute char index, sample) onto the words of ``text``.

    eSpeak may report several words for one written word ("123", "I'm") or skip one (a lone
    dash); consecutive events inside the same written word are merged. A word ends at the
    first pause after it starts, or where the next word starts.
    """
    tokens = [(m.start(), m.end()) for m in WORD_RE.finditer(text)]
    starts = [t[0] for t in tokens]
    spans: list[tuple[int, int]] = []  # (token index, start sample)
    for char, sample in events:
        idx = bisect.bisect_right(starts, char - offset) - 1
        if idx < 0 or (spans and spans[-1][0] >= idx):
            continue
        spans.append((idx, sample))
    result: list[WordTiming] = []
    for n, (idx, start) in enumerate(spans):
        nxt = spans[n + 1][1] if n + 1 < len(spans) else end_sample
        pause = next((p for p in pauses if start < p < nxt), None)
        end = pause if pause is not None else nxt
        a, b = tokens[idx]
        token = text[a:b]
        stripped = token.strip(EDGE_PUNCT)
        if stripped:
            a += token.index(stripped)
            token = stripped
        result.append(WordTiming(word=token, start_ms=to_ms(start), end_ms=to_ms(max(end, start)),
                                 char_start=a, char_len=len(token)))
    return result


class ThreadedTTS(TextToSpeech):
    """A TTS engine whose ``_run`` synthesises in a worker thread and hands each chunk to
    ``emit`` as soon as it is ready (and stops early once ``cancelled`` is set)."""

    def _run(self, text: str, voice: VoiceOptions, emit: Callable[[TTSChunk], None],
             cancelled: threading.Event) -> None:
        raise NotImplementedError

    def synthesize_blocking(self, text: str, *, voice: VoiceOptions) -> list[TTSChunk]:
        """Synthesise in the calling thread (for tools, benchmarks and tests)."""
        chunks: list[TTSChunk] = []
        self._run(text, voice, chunks.append, threading.Event())
        return chunks

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[TTSChunk | None] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(chunk: TTSChunk) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)

        fut = loop.run_in_executor(None, self._run, text, voice, emit, cancelled)
        # done callbacks run on the loop; the sentinel lands after every emitted chunk
        fut.add_done_callback(lambda _f: queue.put_nowait(None))
        try:
            while True:
                chunk = await queue.get()
                if chunk is None:
                    break
                yield chunk
            await fut  # re-raises an EngineError from the thread
        finally:
            if not fut.done():
                # eSpeak's callback sees the flag within one 200 ms buffer of audio, Piper before
                # its next sentence; wait for it so no thread is left behind
                cancelled.set()
                try:
                    await asyncio.shield(fut)
                except Exception:  # noqa: BLE001 - nothing useful to do after a cancel
                    pass


class EspeakTTS(ThreadedTTS):
    """eSpeak NG voices (``VoiceOptions.voice`` like ``"en-us"`` or ``"en-us+f3"``; empty =
    the voice of ``VoiceOptions.language``). Rate = 175 words/minute × ``speed``; an emotion
    (``VoiceOptions.emotion``) scales the rate and sets eSpeak's pitch, range and volume."""

    name = "espeak-ng"

    def __init__(self, *, library_path: str | None = None, data_path: str | None = None) -> None:
        self._espeak = _Espeak.get(library_path, data_path)
        self.sample_rate = self._espeak.sample_rate

    @staticmethod
    def voice_name(voice: VoiceOptions) -> str:
        if voice.voice:
            return voice.voice
        try:
            return language_code(voice.language) or "en"
        except ValueError as exc:
            raise EngineError(str(exc), engine="espeak-ng", code="bad_voice") from exc

    def _run(self, text: str, voice: VoiceOptions, emit: Callable[[TTSChunk], None],
             cancelled: threading.Event) -> None:
        emotion = lookup(voice.emotion)
        rate = int(min(_MAX_RATE, max(_MIN_RATE, round(NORMAL_RATE_WPM * (voice.speed or 1.0) * emotion.rate))))
        name = self.voice_name(voice)
        job = _Job(text=text, sample_rate=self.sample_rate, emit=emit, cancelled=cancelled)
        with _Espeak.lock:
            if cancelled.is_set():
                return
            self._espeak.synth(job, name, rate, emotion)

