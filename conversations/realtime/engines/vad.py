"""Silero VAD (v6 ONNX, shipped in faster-whisper's assets) on onnxruntime + numpy, no torch.

One ``InferenceSession`` per process (``intra_op_num_threads=1``: a 32 ms chunk costs
~0.16 ms, threads would only add overhead); each session of the product gets its own
``SileroVADStream`` holding the recurrent state and the 64-sample context the model
expects in front of every 512-sample chunk. ``InferenceSession.run`` is thread-safe, so
streams need no lock.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .base import STT_SAMPLE_RATE, EngineError, VADStream, VoiceActivityDetector

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 512  # 32 ms at 16 kHz; the model rejects other sizes (e.g. 480)
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)


class SileroVADStream(VADStream):
    chunk_samples = CHUNK_SAMPLES

    def __init__(self, vad: SileroVAD) -> None:
        self._vad = vad
        self._pending = np.zeros(0, np.float32)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, np.float32)
        self._c = np.zeros(_STATE_SHAPE, np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._pending = np.zeros(0, np.float32)

    def probability(self, chunk: np.ndarray) -> float:
        chunk = _as_float32(chunk)
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ValueError(f"Silero VAD takes chunks of {CHUNK_SAMPLES} samples, got {chunk.shape}")
        x = np.concatenate([self._context, chunk])[None, :]
        prob, self._h, self._c = self._vad.session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = chunk[-CONTEXT_SAMPLES:].copy()
        return float(np.asarray(prob).reshape(-1)[0])

    def feed(self, audio: np.ndarray) -> list[float]:
        """Convenience for arbitrary frame sizes (e.g. 20 ms WebRTC frames): buffers the
        remainder and returns one probability per complete 512-sample chunk."""
        buf = np.concatenate([self._pending, _as_float32(audio).reshape(-1)])
        n = len(buf) // CHUNK_SAMPLES
        probs = [self.probability(buf[i * CHUNK_SAMPLES:(i + 1) * CHUNK_SAMPLES]) for i in range(n)]
        self._pending = buf[n * CHUNK_SAMPLES:].copy()
        return probs


class SileroVAD(VoiceActivityDetector):
    name = "silero"
    sample_rate = STT_SAMPLE_RATE

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        import onnxruntime

        if model_path is None:
            from .models import ModelFileError, silero_vad_path

            try:
                model_path = silero_vad_path()
            except ModelFileError as exc:
                raise EngineError(str(exc), engine=self.name) from exc
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(Path(model_path)), sess_options=opts,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"cannot load Silero VAD from {model_path}: {exc}", engine=self.name) from exc

    def stream(self) -> SileroVADStream:
        return SileroVADStream(self)


def _as_float32(audio: np.ndarray) -> np.ndarray:
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768.0
    return np.asarray(audio, dtype=np.float32)
