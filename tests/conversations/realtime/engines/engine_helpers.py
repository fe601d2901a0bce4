"""Helpers for the engine tests (speech, word error rate, wav files, running coroutines)."""
from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACTS = Path(__file__).resolve().parents[4] / "artifacts" / "engines"


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    """Run one coroutine on a fresh event loop, with a timeout (every await is bounded)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def resample(audio: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(src, dst)
    return resample_poly(audio, dst // g, src // g).astype(np.float32)


def words_of(text: str) -> list[str]:
    return re.sub(r"[^\w' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words_of(reference), words_of(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, start=1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def save_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if pcm.dtype != np.int16:
        pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
