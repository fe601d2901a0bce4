"""How speech drives the mouth (no Django, no drawing): a TTS phrase in, a mouth trajectory
out, which the renderer (``faces.renderer``) samples frame by frame.

- With phoneme timings: each eSpeak phoneme gives an openness and a lip shape (neutral / wide /
  round, the order of ``faces.assets.SHAPES``), smoothed across neighbours for coarticulation;
  the lips really meet for p/b/m, and the audio's loudness gates the result so pauses close the
  mouth.
- Without timings: the mouth follows the audio's loudness.

Trajectories have one value per ``STEP_MS``. This module imports neither the renderer nor the
training code (faces/ keeps no import cycles).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conversations.realtime.engines.base import PhonemeTiming, TTSChunk

NEUTRAL, WIDE, ROUND = 0, 1, 2
STEP_MS = 10.0  # resolution of the mouth trajectories

# eSpeak NG phoneme mnemonics → (openness 0..1, lip shape).
_VISEMES: dict[str, tuple[float, int]] = {}
for names, value in (
    (("a", "a#", "A:", "A", "aI", "aU", "a:", "&", "aa", "A@", "aI@", "aU@", "aI3"), (0.95, NEUTRAL)),
    (("V", "@", "3:", "@L", "@2", "@5", "3", "a2", "@-"), (0.55, NEUTRAL)),
    (("E", "e", "eI", "e@", "E2", "E:", "e:"), (0.62, WIDE)),
    (("I", "i", "i:", "i@", "I2", "I#", "y", "I@", "i@3"), (0.36, WIDE)),
    (("0", "O:", "O", "o", "oU", "o:", "OI", "O@", "o@"), (0.72, ROUND)),
    (("u:", "U", "u", "U@", "u@"), (0.38, ROUND)),
    (("p", "b", "m"), (0.0, NEUTRAL)),
    (("f", "v"), (0.1, NEUTRAL)),
    (("T", "D"), (0.22, NEUTRAL)),
    (("s", "z", "ts", "dz"), (0.16, WIDE)),
    (("S", "Z", "tS", "dZ"), (0.22, ROUND)),
    (("t", "d", "n", "l", "k", "g", "N", "h", "x", "t#", "d#", "n-", "l/", "L", "?", "l#"), (0.3, NEUTRAL)),
    (("r", "R", "r-", "*", "r/"), (0.28, ROUND)),
    (("w", "W"), (0.14, ROUND)),
    (("j",), (0.25, WIDE)),
    (("_", "_:", "_!", "", "||", "|", "_^_"), (0.0, NEUTRAL)),
):
    for name in names:
        _VISEMES[name] = value
_BILABIAL = {"p", "b", "m"}


def _clean(phoneme: str) -> str:
    return phoneme if phoneme in _VISEMES else phoneme.strip("'\",%=").strip()


def viseme(phoneme: str) -> tuple[float, int]:
    """Openness (0 closed .. 1 wide open) and lip shape of an eSpeak phoneme mnemonic."""
    name = _clean(phoneme)
    if name in _VISEMES:
        return _VISEMES[name]
    if name.startswith("_"):
        return 0.0, NEUTRAL
    if name and name[0] in "aAV@3&":
        return 0.7, NEUTRAL
    if name and name[0] in "eEiIy":
        return 0.45, WIDE
    if name and name[0] in "oOuU0w":
        return 0.55, ROUND
    return 0.3, NEUTRAL


def _gauss(x: np.ndarray, sigma_ms: float) -> np.ndarray:
    """Non-causal smoothing along the last axis (the whole phrase is known in advance)."""
    s = sigma_ms / STEP_MS
    r = int(3 * s) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    k /= k.sum()
    pad = [(0, 0)] * (x.ndim - 1) + [(r, r)]
    xp = np.pad(x, pad, mode="edge")
    if x.ndim == 1:
        return np.convolve(xp, k, mode="valid").astype(np.float32)
    return np.stack([np.convolve(row, k, mode="valid") for row in xp]).astype(np.float32)


def _envelope(pcm: np.ndarray, sample_rate: int, n: int) -> np.ndarray:
    """RMS per STEP_MS over a window of two steps, centred (no lag)."""
    x = pcm.astype(np.float32) / 32768.0
    hop = sample_rate * STEP_MS / 1000
    out = np.zeros(n, np.float32)
    for k in range(n):
        a, b = int(max(0, (k - 1) * hop)), int(min(len(x), (k + 1) * hop))
        if b > a:
            out[k] = math.sqrt(float(np.mean(x[a:b] ** 2)))
    return out


@dataclass
class Speech:
    """One pushed phrase: its mouth trajectory, and where it sits on the session clock."""

    duration_ms: float
    openness: np.ndarray  # per STEP_MS, 0..1
    shapes: np.ndarray  # (3, n) weights of neutral / wide / round
    start_ms: float | None = None

    def at(self, rel_ms: float) -> tuple[float, np.ndarray]:
        n = len(self.openness)
        if n == 0 or rel_ms < 0 or rel_ms >= self.duration_ms:
            return 0.0, np.array([1.0, 0.0, 0.0], np.float32)
        f = rel_ms / STEP_MS
        i = min(int(f), n - 1)
        j = min(i + 1, n - 1)
        a = f - i
        return (float(self.openness[i] * (1 - a) + self.openness[j] * a),
                self.shapes[:, i] * (1 - a) + self.shapes[:, j] * a)


def _from_phonemes(phonemes: Sequence[PhonemeTiming], pcm: np.ndarray, sample_rate: int,
                   duration_ms: float) -> Speech:
    n = max(1, int(math.ceil(duration_ms / STEP_MS)))
    opens = np.zeros(n, np.float32)
    shapes = np.zeros((3, n), np.float32)
    shapes[NEUTRAL] = 1.0
    closed = np.zeros(n, np.float32)
    ordered = sorted(phonemes, key=lambda p: p.start_ms)
    for i, ph in enumerate(ordered):
        a = int(max(0.0, ph.start_ms) / STEP_MS)
        end = ordered[i + 1].start_ms if i + 1 < len(ordered) else duration_ms
        b = max(a + 1, int(min(end, duration_ms) / STEP_MS))
        o, shape = viseme(ph.phoneme)
        opens[a:b] = o
        shapes[:, a:b] = 0.0
        shapes[shape, a:b] = 1.0
        if _clean(ph.phoneme) in _BILABIAL:
            closed[a:b] = 1.0
    # Coarticulation: each articulation blends into its neighbours (~30 ms), lip rounding
    # spreads further than jaw opening.
    opens = _gauss(opens, 30.0)
    shapes = _gauss(shapes, 45.0)
    # The lips must really meet for p/b/m, however short.
    opens *= 1 - 0.9 * np.clip(_gauss(closed, 12.0) * 2, 0, 1)
    env = _envelope(pcm, sample_rate, n)
    peak = float(np.percentile(env, 95)) if env.size else 0.0
    if peak > 1e-4:
        # Silence in the audio closes the mouth whatever the timings say; louder opens wider.
        level = np.clip(env / peak, 0, 1)
        gate = np.clip(env / (0.12 * peak), 0, 1) ** 0.5
        opens *= _gauss(gate * (0.7 + 0.3 * level), 15.0)
    return Speech(duration_ms, np.clip(opens, 0, 1), shapes)


def _from_energy(pcm: np.ndarray, sample_rate: int) -> Speech:
    """No timings: the mouth follows the audio's loudness."""
    duration = 1000.0 * len(pcm) / sample_rate
    n = max(1, int(math.ceil(duration / STEP_MS)))
    env = _envelope(pcm, sample_rate, n)
    peak = max(float(np.percentile(env, 95)) if env.size else 0.0, 1e-4)
    opens = _gauss(np.clip((env / peak - 0.06) * 1.15, 0, 1) ** 0.8, 20.0)
    shapes = np.zeros((3, n), np.float32)
    shapes[NEUTRAL] = 1.0
    return Speech(duration, np.clip(opens, 0, 1), shapes)


def speech_from_chunk(chunk: TTSChunk) -> Speech:
    """The mouth trajectory of one phrase (not yet placed on the clock): from its phoneme
    timings, else from its loudness; as long as its audio."""
    duration = chunk.duration_ms
    if chunk.phonemes:
        speech = _from_phonemes(chunk.phonemes, chunk.pcm, chunk.sample_rate, duration)
    else:
        speech = _from_energy(chunk.pcm, chunk.sample_rate)
    speech.duration_ms = duration
    return speech


def synthetic_speech_chunk(ms: float) -> TTSChunk:
    """A silent chunk with a plausible phoneme rhythm (previews and benchmarks)."""
    cycle = ["h", "@", "l", "oU", "w", "3:", "l", "d", "_", "m", "aI", "n", "eI", "m", "I", "z", "_"]
    phonemes = [PhonemeTiming(cycle[i % len(cycle)], i * 85.0) for i in range(int(ms // 85))]
    return TTSChunk(pcm=np.zeros(int(ms * 22.05), np.int16), sample_rate=22050, phonemes=phonemes)

