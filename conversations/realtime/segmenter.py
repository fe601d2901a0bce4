"""The user's audio as voiced chunks: VAD framing, hysteresis, preroll and the segment limits.

Mic audio arrives at 16 kHz in frames of any size. :class:`VadSegmenter` cuts it into the
512-sample chunks the VAD takes (32 ms; a remainder waits for the next frame) and keeps time
in *input-audio* samples, not wall time. A chunk is voiced from ``VAD_ON`` and stays voiced
down to ``VAD_OFF``; ``START_CHUNKS`` voiced chunks in a row start speech, and the
``PREROLL_CHUNKS`` heard before are handed over with it so a segment begins at its first
syllable; ``GAP_CHUNKS`` of silence are a safe place to cut between words. A segment needs
``MIN_TURN_VOICED_MS`` of voice to be a turn and is cut at ``MAX_TURN_MS``; what a segment
becomes is decided by turn_taking.py's processor: a turn (turn_policy.py), a barge-in or a
backchannel (barge_in.py).
"""
from __future__ import annotations

import collections
from collections.abc import Iterator

import numpy as np

from .engines.base import VoiceActivityDetector

SAMPLE_RATE = 16_000
CHUNK = 512
CHUNK_MS = 1000.0 * CHUNK / SAMPLE_RATE  # 32 ms
VAD_ON = 0.5  # probability that starts a voiced run
VAD_OFF = 0.35  # a voiced run continues above this (hysteresis)
START_CHUNKS = 2  # 64 ms of voice start speech
PREROLL_CHUNKS = 10  # ~320 ms of audio kept before speech starts (the first syllable)
MIN_TURN_VOICED_MS = 150  # less voiced audio than this is noise, not a turn
MAX_TURN_MS = 25_000  # a longer monologue is cut into turns (Whisper's window is 30 s)
#: a gap in the voice at least this long is a safe place to cut between words
GAP_CHUNKS = 2


class VadSegmenter:
    """One session's VAD front end: frames in, voiced / silent chunks out."""

    def __init__(self, vad: VoiceActivityDetector) -> None:
        self.vad = vad.stream()
        self.sample = 0  # input samples processed (chunk ends)
        self.voiced_run = 0
        self.silent_run = 0
        #: recent VAD probabilities (observable: tests, stats)
        self.probabilities: collections.deque[float] = collections.deque(maxlen=64)
        self._pending = np.zeros(0, np.float32)
        self._preroll: collections.deque[np.ndarray] = collections.deque(maxlen=PREROLL_CHUNKS)
        self._prev_voiced = False
        self._frame_end_sample = 0
        self._frame_arrival = 0.0

    @property
    def audio_ms(self) -> float:
        """Input audio processed so far."""
        return 1000.0 * self.sample / SAMPLE_RATE

    def chunks(self, pcm: np.ndarray, arrival: float) -> Iterator[np.ndarray]:
        """The whole chunks of a frame (after what the previous frame left over); ``arrival``
        is the clock time of its last sample. The rest waits for the next frame."""
        buf = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        n = len(buf) // CHUNK
        self._frame_end_sample = self.sample + len(buf)
        self._frame_arrival = arrival
        for i in range(n):
            yield buf[i * CHUNK:(i + 1) * CHUNK]
        self._pending = buf[n * CHUNK:].copy()

    def classify(self, chunk: np.ndarray) -> bool:
        """Run the VAD on the next chunk (it then counts as processed): is it voiced?"""
        p = self.vad.probability(chunk)
        self.probabilities.append(p)
        self.sample += CHUNK
        voiced = p >= VAD_ON or (self._prev_voiced and p >= VAD_OFF)
        self._prev_voiced = voiced
        if voiced:
            self.voiced_run += 1
            self.silent_run = 0
        else:
            self.silent_run += 1
            self.voiced_run = 0
        return voiced

    def chunk_time(self) -> float:
        """Clock time at which the current chunk's last sample arrived."""
        behind = self._frame_end_sample - self.sample
        return self._frame_arrival - behind / SAMPLE_RATE

    @property
    def speech_start(self) -> bool:
        """The voice has lasted ``START_CHUNKS``: speech starts (or goes on after a pause)."""
        return self.voiced_run >= START_CHUNKS

    @property
    def at_gap(self) -> bool:
        """The silence has just reached ``GAP_CHUNKS``."""
        return self.silent_run == GAP_CHUNKS

    def keep_preroll(self, chunk: np.ndarray) -> None:
        """A chunk heard outside any segment: kept in case speech starts now."""
        self._preroll.append(chunk)

    def take_preroll(self) -> tuple[int, list[np.ndarray]]:
        """The audio kept before speech started (its first sample, its chunks); the preroll
        is empty afterwards."""
        start = self.sample - CHUNK * len(self._preroll)
        chunks = list(self._preroll)
        self._preroll.clear()
        return start, chunks
