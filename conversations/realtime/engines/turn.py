"""Smart Turn v3.2: a trained end-of-turn model that listens to how the user stopped.

Pipecat's Smart Turn v3.2 CPU model (BSD-2-Clause, int8 ONNX, 8.7 MB) ships inside the
``pipecat-ai`` wheel; the project installs that wheel without its dependencies and uses only
the file (``models.smart_turn_path`` checks its sha256). Input: the last 8 s of 16 kHz audio
(shorter audio is padded with silence *in front*, as in training), normalised to zero mean
and unit variance, as Whisper-style log-mel features [1, 80, 800]; output: P(turn complete).

The features come from faster-whisper's numpy extractor (the same log-mel as
``transformers.WhisperFeatureExtractor``, which the model was trained with).

One ``InferenceSession`` per process on one onnxruntime thread (~90 ms a call here; two
threads were slower on this 2-core box). Calls run in a worker thread under the model's own
lock, so they overlap a transcription (the STT has its own lock).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np

from .base import STT_SAMPLE_RATE, EngineError, TurnModel

logger = logging.getLogger(__name__)

WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * STT_SAMPLE_RATE
_NORM_EPS = 1e-7
#: the 23 languages Smart Turn v3 was trained on (its model card)
SMART_TURN_LANGUAGES = frozenset(
    "ar bn zh da nl de en fi fr hi id it ja ko mr no pl pt ru es tr uk vi".split())


def smart_turn_input(audio: np.ndarray) -> np.ndarray:
    """float32 [1, 80, 800] features of the last 8 s of ``audio`` (16 kHz)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    x = np.asarray(audio, dtype=np.float32).reshape(-1)[-WINDOW_SAMPLES:]
    if len(x) < WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(WINDOW_SAMPLES - len(x), np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)
    features = _extractor(FeatureExtractor)(x, padding=0)
    return features[None, :, : WINDOW_SAMPLES // 160].astype(np.float32)


_EXTRACTOR = None


def _extractor(cls):  # noqa: ANN001, ANN202 - faster_whisper.feature_extractor.FeatureExtractor
    global _EXTRACTOR
    if _EXTRACTOR is None:
        _EXTRACTOR = cls(feature_size=80, chunk_length=WINDOW_S)
    return _EXTRACTOR


class SmartTurnModel(TurnModel):
    name = "smart-turn-v3.2"
    languages = SMART_TURN_LANGUAGES

    def __init__(self, path: str | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        from .models import ModelFileError, smart_turn_path

        try:
            model_path = path or str(smart_turn_path())
        except ModelFileError as exc:
            raise EngineError(str(exc), engine=self.name) from exc
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(model_path, sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own errors on a bad file
            raise EngineError(f"cannot load the Smart Turn model {model_path}: {exc}", engine=self.name) from exc
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()
        #: wall time of the last call (ms), for the latency record
        self.last_ms = 0.0

    async def probability(self, audio: np.ndarray) -> float:
        return await asyncio.to_thread(self.probability_blocking, audio)

    def probability_blocking(self, audio: np.ndarray) -> float:
        started = time.perf_counter()
        features = smart_turn_input(audio)
        with self._lock:
            out = self._session.run(None, {self._input: features})
        self.last_ms = 1000.0 * (time.perf_counter() - started)
        return float(np.asarray(out[0]).reshape(-1)[0])
