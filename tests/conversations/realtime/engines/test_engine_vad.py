"""Silero VAD on onnxruntime: speech vs silence on eSpeak speech, per-session state."""
from __future__ import annotations

import numpy as np
import pytest

from conversations.realtime.engines.base import STT_SAMPLE_RATE

pytestmark = pytest.mark.slow

CHUNK = 512


def segments(probs: list[float], on: float = 0.5, off: float = 0.35, min_gap: int = 8) -> list[tuple[float, float]]:
    """(start_s, end_s) of speech from chunk probabilities, with hysteresis."""
    out: list[list[int]] = []
    active = False
    for i, p in enumerate(probs):
        if not active and p >= on:
            if out and i - out[-1][1] <= min_gap:
                out[-1][1] = i
            else:
                out.append([i, i])
            active = True
        elif active:
            if p < off:
                active = False
            else:
                out[-1][1] = i
    sec = CHUNK / STT_SAMPLE_RATE
    return [(a * sec, (b + 1) * sec) for a, b in out]


@pytest.fixture(scope="module")
def conversation(speak):
    """1 s silence, a sentence, 1.5 s silence, another voice, 1 s silence (+ faint noise)."""
    rng = np.random.default_rng(7)
    sil = lambda s: np.zeros(int(s * STT_SAMPLE_RATE), np.float32)  # noqa: E731
    a = speak("Good morning, I would like to book a room for tonight.", "en-us")
    b = speak("Do you have anything with a view of the sea?", "en+f3")
    audio = np.concatenate([sil(1.0), a, sil(1.5), b, sil(1.0)])
    audio += rng.normal(0, 0.002, len(audio)).astype(np.float32)  # a quiet room, not digital silence
    t_a = (1.0, 1.0 + len(a) / STT_SAMPLE_RATE)
    t_b = (t_a[1] + 1.5, t_a[1] + 1.5 + len(b) / STT_SAMPLE_RATE)
    return audio, [t_a, t_b]


def test_finds_the_speech_and_the_silence(vad, conversation):
    audio, truth = conversation
    stream = vad.stream()
    n = len(audio) // CHUNK
    probs = [stream.probability(audio[i * CHUNK:(i + 1) * CHUNK]) for i in range(n)]
    found = segments(probs)
    assert len(found) == 2, found
    for (s, e), (ts, te) in zip(found, truth):
        assert abs(s - ts) < 0.25 and abs(e - te) < 0.45, (found, truth)
    # chunks well inside the silences are clearly not speech
    sec = CHUNK / STT_SAMPLE_RATE
    quiet = [p for i, p in enumerate(probs) if i * sec < 0.8 or truth[0][1] + 0.5 < i * sec < truth[1][0] - 0.3]
    assert max(quiet) < 0.3
    loud = [p for i, p in enumerate(probs) if truth[0][0] + 0.3 < i * sec < truth[0][1] - 0.3]
    assert np.mean(loud) > 0.7


def test_streams_keep_their_own_state_and_accept_any_frame_size(vad, conversation):
    audio, _ = conversation
    n = len(audio) // CHUNK
    ref = vad.stream()
    expected = [ref.probability(audio[i * CHUNK:(i + 1) * CHUNK]) for i in range(n)]
    # two sessions interleaved on the shared model: one on the speech, one on silence
    s1, s2 = vad.stream(), vad.stream()
    got, silent = [], []
    for i in range(n):
        got.append(s1.probability(audio[i * CHUNK:(i + 1) * CHUNK]))
        silent.append(s2.probability(np.zeros(CHUNK, np.float32)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert max(silent) < 0.1
    # 20 ms WebRTC frames (320 samples) through feed(): same probabilities
    s3 = vad.stream()
    fed = []
    for i in range(0, len(audio), 320):
        fed.extend(s3.feed(audio[i:i + 320]))
    np.testing.assert_allclose(fed[:n], expected, atol=1e-5)
    # int16 input is accepted; reset() forgets the state
    s1.reset()
    p16 = s1.probability((audio[:CHUNK] * 32767).astype(np.int16))
    assert abs(p16 - expected[0]) < 1e-3
    with pytest.raises(ValueError):
        s1.probability(np.zeros(480, np.float32))
