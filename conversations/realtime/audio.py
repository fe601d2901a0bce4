"""Audio helpers: format conversion and a streaming resampler (numpy only).

WebRTC hands us 20 ms frames at 48 kHz (often int16, sometimes stereo interleaved); VAD and
STT want float32 mono at 16 kHz in 512-sample chunks; the TTS speaks at its own rate and the
outgoing track wants 48 kHz again. :class:`StreamResampler` keeps its phase between calls,
so a stream cut into frames resamples without clicks at the frame edges.
"""
from __future__ import annotations

import base64
import math

import numpy as np


def to_float32_mono(pcm: np.ndarray, *, channels: int = 1) -> np.ndarray:
    """int16/int32/float PCM -> float32 mono. Accepts mono, interleaved (1-D, or one row as
    av's packed frames give it), or one row per channel / one column per channel."""
    a = np.asarray(pcm)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        a = a.astype(np.float32) / 2147483648.0
    elif a.dtype != np.float32:
        a = a.astype(np.float32)
    if a.ndim == 2:
        if channels > 1 and a.shape[0] == channels and a.shape[1] != channels:
            a = a.mean(axis=0)  # planar: one row per channel
        elif channels > 1 and a.shape[1] == channels:
            a = a.mean(axis=1)  # one column per channel
        else:
            a = a.reshape(-1)  # one row: mono, or packed interleaved (below)
    if a.ndim == 1 and channels > 1 and a.size % channels == 0:
        a = a.reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(a.reshape(-1), dtype=np.float32)


def float_to_int16(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16)


def decode_pcm16_base64(data: str) -> np.ndarray:
    """Base64 little-endian int16 PCM (as ``conversation.echo`` sends it) -> int16 array."""
    raw = base64.b64decode(data, validate=False)
    if len(raw) % 2:
        raw = raw[:-1]
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


class StreamResampler:
    """Streaming resampler: a windowed-sinc low-pass when downsampling (so nothing above
    the new Nyquist folds back into the speech band), then linear interpolation.

    Good for speech into VAD/STT and for a voice out; stateful, so one stream per instance.
    The low-pass delays the signal by ``(taps - 1) / 2`` input samples.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._step = src_rate / dst_rate  # input samples per output sample
        if src_rate > dst_rate:
            n = 2 * int(math.ceil(6 * self._step)) + 1
            fc = 0.45 * dst_rate / src_rate  # cycles per input sample, a little under Nyquist
            k = np.arange(n) - (n - 1) / 2
            h = 2 * fc * np.sinc(2 * fc * k) * np.hamming(n)
            self._fir: np.ndarray | None = (h / h.sum()).astype(np.float32)
            self._hist = np.zeros(n - 1, np.float32)
        else:
            self._fir = None
            self._hist = np.zeros(0, np.float32)
        self._prev: float | None = None  # last filtered sample of the previous call
        self._pos = 0.0  # position of the next output sample, relative to _prev (index 0)

    @property
    def delay_samples(self) -> float:
        """Delay the filter adds, in input samples."""
        return 0.0 if self._fir is None else (len(self._fir) - 1) / 2

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self.src_rate == self.dst_rate:
            return x.copy()
        if self._fir is not None:
            buf = np.concatenate([self._hist, x])
            self._hist = buf[len(buf) - (len(self._fir) - 1):]
            x = np.convolve(buf, self._fir, mode="valid").astype(np.float32)
        if not len(x):
            return np.zeros(0, np.float32)
        seq = x if self._prev is None else np.concatenate([[self._prev], x]).astype(np.float32)
        # output positions within seq: _pos, _pos + step, ... up to the last sample
        last = len(seq) - 1
        n = 0 if self._pos > last else int(math.floor((last - self._pos) / self._step)) + 1
        pos = self._pos + self._step * np.arange(n)
        out = np.interp(pos, np.arange(len(seq)), seq).astype(np.float32)
        # the next position, relative to the new _prev (= seq[last])
        self._pos = self._pos + self._step * n - last
        self._prev = float(seq[last])
        return out


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """One-shot resampling of a whole signal (float32 in, float32 out)."""
    if src_rate == dst_rate:
        return np.asarray(x, dtype=np.float32).copy()
    r = StreamResampler(src_rate, dst_rate)
    out = r.process(x)
    # flush: the last input sample is held back as the next interpolation point
    tail_len = int(round(len(x) * dst_rate / src_rate)) - len(out)
    if tail_len > 0 and r._prev is not None:
        out = np.concatenate([out, np.full(tail_len, r._prev, np.float32)])
    return out
