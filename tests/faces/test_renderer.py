"""The realtime face renderer on the stock face: lip-sync against the audio (correlation and
A/V offset), the energy fallback, speech starting on the next frame, interruption easing back
to idle, played-audio accounting, blinks, greenscreen, sizes; plus a contact sheet to look at."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conversations.realtime.engines.base import TTSChunk
from faces.mouth import viseme
from faces.renderer import FaceRendererEngine
from tests.faces.conftest import ARTIFACTS


def lips_box(assets, scale: float = 1.0):
    """The opening between the lips: around the mouth's centre, as wide as the lips."""
    cx, cy = assets.info.mouth_center
    iod = assets.info.iod
    return tuple(int(v * scale) for v in (cx - 0.45 * iod, cy - 0.12 * iod, cx + 0.45 * iod, cy + 0.3 * iod))


def mouth_darkness(frame: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    gray = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    return float((gray < 90).mean())


def joined(chunks) -> tuple[np.ndarray, int]:
    rate = chunks[0].sample_rate
    assert all(c.sample_rate == rate for c in chunks)
    return np.concatenate([c.pcm for c in chunks]), rate


def envelope(pcm: np.ndarray, rate: int, step_ms: float, n: int) -> np.ndarray:
    """RMS of the audio played during each frame interval [k·step, (k+1)·step)."""
    x = pcm.astype(np.float32) / 32768
    hop = rate * step_ms / 1000
    return np.array([np.sqrt(np.mean(x[int(k * hop):int((k + 1) * hop)] ** 2) + 1e-12) for k in range(n)])


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, dict[int, float]]:
    """The lag (in samples) of ``a`` behind ``b`` with the highest correlation."""
    corr = {}
    for lag in range(-max_lag, max_lag + 1):
        x = a[max(0, lag):len(a) + min(0, lag)]
        y = b[max(0, -lag):len(b) - max(0, lag)]
        corr[lag] = float(np.corrcoef(x, y)[0, 1])
    return max(corr, key=corr.get), corr


def render(assets, chunks, *, fps: int = 25, lead: int = 5, seed: int = 7):
    r = FaceRendererEngine(assets, fps=fps, seed=seed)
    step = 1000.0 / fps
    for k in range(lead):
        r.next_frame(k * step)
    for c in chunks:
        r.push_audio(c)
    total = sum(c.duration_ms for c in chunks)
    n = int(total // step)
    frames = [r.next_frame((lead + k) * step) for k in range(n)]
    return r, frames


def test_visemes_cover_espeak_phonemes(reply_chunks):
    names = {p.phoneme for c in reply_chunks for p in c.phonemes}
    assert viseme("p")[0] == 0.0 and viseme("a")[0] > 0.8 and viseme("u:")[1] == 2
    # every phoneme eSpeak produced for the reply maps to a shape, pauses to a closed mouth
    assert all(0.0 <= viseme(n)[0] <= 1.0 for n in names)
    assert viseme("_:")[0] == 0.0


def assert_mouth_follows(assets, chunks) -> np.ndarray:
    """The mouth's opening, frame by frame, correlates with the audio's loudness within one
    25 fps frame; returns the opening."""
    _, frames = render(assets, chunks)
    box = lips_box(assets)
    opening = np.array([mouth_darkness(f, box) for f in frames])
    pcm, rate = joined(chunks)
    env = envelope(pcm, rate, 40.0, len(frames))
    assert opening.max() > opening.min() + 0.1, "the mouth never opened"
    lag, corr = best_lag(opening, env, 3)
    assert corr[lag] > 0.5, corr
    assert abs(lag) <= 1, f"A/V offset {lag * 40} ms ({corr})"
    return opening


def test_mouth_follows_the_audio_within_one_frame(stock_assets, reply_chunks):
    assert_mouth_follows(stock_assets, reply_chunks)


def test_face_mesh_sees_the_mouth_open_in_time_with_the_audio(stock_assets, reply_chunks):
    """The same check with MediaPipe's face mesh on the output frames (the lips' inner gap),
    so the painted mouth reads as an open mouth, not only as dark pixels."""
    from faces.training import landmarks as L

    _, frames = render(stock_assets, reply_chunks)
    L.reset_tracking()
    gaps = []
    for f in frames:
        faces = L.measure_faces(f, static=False)
        assert faces, "the face was lost"
        gaps.append(faces[0].mouth_open)
    pcm, rate = joined(reply_chunks)
    env = envelope(pcm, rate, 40.0, len(frames))
    lag, corr = best_lag(np.array(gaps), env, 3)
    assert corr[lag] > 0.45, corr
    assert abs(lag) <= 1, f"A/V offset {lag * 40} ms ({corr})"


def test_av_offset_within_40ms_at_10ms_resolution(stock_assets, reply_chunks):
    """Frames every 10 ms (the same renderer at 100 fps): the mouth's opening lines up with
    the sound it plays to within a 25 fps frame."""
    _, frames = render(stock_assets, reply_chunks, fps=100, lead=20)
    box = lips_box(stock_assets)
    opening = np.array([mouth_darkness(f, box) for f in frames])
    pcm, rate = joined(reply_chunks)
    env = envelope(pcm, rate, 10.0, len(frames))
    lag, corr = best_lag(opening, env, 15)
    assert corr[lag] > 0.5, corr
    assert abs(lag * 10) <= 40, f"A/V offset {lag * 10} ms"


def test_energy_fallback_without_timings(stock_assets, reply_chunks):
    bare = [TTSChunk(pcm=c.pcm, sample_rate=c.sample_rate) for c in reply_chunks]
    _, frames = render(stock_assets, bare)
    opening = np.array([mouth_darkness(f, lips_box(stock_assets)) for f in frames])
    pcm, rate = joined(bare)
    env = envelope(pcm, rate, 40.0, len(frames))
    lag, corr = best_lag(opening, env, 3)
    assert corr[lag] > 0.5, corr
    assert abs(lag) <= 1


def test_speech_starts_on_the_next_frame_and_clear_eases_back_to_idle(stock_assets, reply_chunks):
    speaking = FaceRendererEngine(stock_assets, seed=3)
    quiet = FaceRendererEngine(stock_assets, seed=3)  # same blinks, never speaks
    box = lips_box(stock_assets)
    for k in range(5):
        assert np.array_equal(speaking.next_frame(k * 40.0), quiet.next_frame(k * 40.0))
    speaking.push_audio(reply_chunks[1])
    assert speaking.played_ms() == 0.0
    t = 5 * 40.0
    first = speaking.next_frame(t)
    quiet.next_frame(t)
    assert speaking.played_ms() == 40.0, "speech must start on the frame after the push"
    assert first.shape == (512, 512, 3)
    opened = []
    for k in range(6, 20):
        opened.append(mouth_darkness(speaking.next_frame(k * 40.0), box) - mouth_darkness(quiet.next_frame(k * 40.0), box))
    assert max(opened) > 0.1, "the mouth did not open in the first half second"
    played = speaking.played_ms()
    speaking.clear()
    assert speaking.played_ms() == played, "clear() keeps what was already played"
    diffs = []
    for k in range(20, 30):
        a, b = speaking.next_frame(k * 40.0), quiet.next_frame(k * 40.0)
        diffs.append(float(np.abs(a.astype(np.int16) - b).mean()))
    assert diffs[0] > 0 or opened[-1] <= 0.01
    assert diffs[5] == 0.0, f"not back to idle five frames after clear(): {diffs}"
    # Easing, not a jump: the mouth closes over several frames.
    assert sum(1 for d in diffs[:5] if d > 0) >= 2 or diffs[0] == 0.0
    assert speaking.played_ms() == played


def test_played_ms_counts_what_was_shown(stock_assets, reply_chunks):
    r, frames = render(stock_assets, reply_chunks)
    total = sum(c.duration_ms for c in reply_chunks)
    assert abs(r.played_ms() - min(len(frames) * 40.0, total)) <= 1.0
    for k in range(30):  # play out the rest
        r.next_frame((5 + len(frames) + k) * 40.0)
    assert r.played_ms() == pytest.approx(total)
    assert not r.speaking


def test_phrases_play_back_to_back(stock_assets, reply_chunks):
    """A phrase pushed while one is playing follows it without a gap or an overlap."""
    r = FaceRendererEngine(stock_assets)
    r.next_frame(0.0)
    r.push_audio(reply_chunks[0])
    r.next_frame(40.0)
    r.push_audio(reply_chunks[1])
    first, second = reply_chunks[0].duration_ms, reply_chunks[1].duration_ms
    t = 40.0
    while t < 40.0 + first + second + 200:
        t += 40.0
        r.next_frame(t)
        if t + 40.0 <= 40.0 + first:
            assert r.played_ms() == pytest.approx(t + 40.0 - 40.0)
    assert r.played_ms() == pytest.approx(first + second)


def test_idle_blinks_and_always_gives_a_frame(stock_assets):
    r = FaceRendererEngine(stock_assets)
    frames = [r.next_frame(k * 40.0) for k in range(200)]
    assert all(f.shape == (512, 512, 3) and f.dtype == np.uint8 for f in frames)
    x0, y0, x1, y1 = stock_assets.info.eye_roi
    eyes = np.array([f[y0:y1, x0:x1].astype(np.float32).mean() for f in frames])
    steps = np.abs(np.diff(eyes))
    assert steps.max() > 4 * np.median(steps) + 0.5, "no blink in 8 s"
    # Subtle head motion while listening: frames differ, but only a little.
    moves = [float(np.abs(frames[k].astype(np.int16) - frames[k + 1]).mean()) for k in range(0, 100)]
    assert 0 < np.median(moves) < 3


def test_photo_idle_loop_has_no_seam(stock_assets):
    f = stock_assets.frames.astype(np.int16)
    steps = [float(np.abs(f[k + 1] - f[k]).mean()) for k in range(len(f) - 1)]
    seam = float(np.abs(f[0] - f[-1]).mean())
    assert len(f) >= 50
    assert seam <= max(steps), (seam, max(steps))


def test_greenscreen_background(stock_assets, reply_chunks):
    r = FaceRendererEngine(stock_assets, greenscreen=True)
    frames = [r.next_frame(k * 40.0) for k in range(3)]
    for c in reply_chunks:
        r.push_audio(c)
    frames += [r.next_frame((3 + k) * 40.0) for k in range(30)]
    for k, frame in enumerate(frames):
        corner = frame[:40, :40].reshape(-1, 3).astype(np.float32).mean(axis=0)
        assert np.allclose(corner, [0, 255, 155], atol=10), corner
        mask = stock_assets.person_mask[(k % len(stock_assets.person_mask))]
        background = frame[mask == 0].astype(np.float32)
        assert np.abs(background - [0, 255, 155]).max(axis=1).mean() < 2, "background not green around the patches"
    center = frames[-1][250:270, 240:270].reshape(-1, 3).mean(axis=0)
    assert not np.allclose(center, [0, 255, 155], atol=40)


def test_other_sizes(stock_assets, reply_chunks):
    r = FaceRendererEngine(stock_assets, size=256)
    r.next_frame(0.0)
    r.push_audio(reply_chunks[1])
    frames = [r.next_frame(40.0 * k) for k in range(1, 20)]
    assert all(f.shape == (256, 256, 3) for f in frames)
    box = lips_box(stock_assets, 0.5)
    assert max(mouth_darkness(f, box) for f in frames) > 0.1


def test_contact_sheet_of_idle_and_speaking(stock_assets, reply_chunks):
    from bench.face import contact_sheet

    sheet = contact_sheet(stock_assets, chunks=reply_chunks)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "contact_sheet.png"
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    assert sheet.shape == (192, 192 * 9, 3)
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_bench_render_times_the_calls_own_encoder(stock_assets, reply_chunks, codec):
    """The benchmark's figures come from the encoder a call really uses (aiortc's): every frame
    gives RTP packets, and the totals add up."""
    from bench.face import bench_render

    result = bench_render(stock_assets, 1.0, codec=codec, chunks=reply_chunks, record=codec == "vp8")
    assert result["frames"] == 25 and result["codec"] == codec
    if codec == "vp8":  # with --record: the recorder encoded every frame, and its cost is reported
        assert result["recording"]["dropped_frames"] == 0 and result["recording"]["ms_per_video_frame"] > 0
        assert result["recording"]["bytes_per_second"] > 1000
    assert result["encode_ms_per_frame"]["p50"] > 0 and result["render_ms_per_frame"]["p50"] > 0
    assert result["ms_per_frame"]["mean"] >= result["encode_ms_per_frame"]["mean"]


def test_the_mouth_follows_the_piper_voice_within_one_frame(stock_assets, monkeypatch):
    """The same lip-sync check with the neural voice's timings (IPA converted to the same
    phoneme names as eSpeak's). Piper samples its durations and voice (noise); the test
    turns the noise off so every run checks the same audio."""
    import functools

    import piper

    from conversations.realtime.engines import registry
    from conversations.realtime.engines.base import VoiceOptions

    monkeypatch.setattr(piper, "SynthesisConfig",
                        functools.partial(piper.SynthesisConfig, noise_scale=0.0, noise_w_scale=0.0))

    chunks = registry.get_tts("piper").synthesize_blocking(
        "Hello! I am really happy to meet you today, and I hope you are well.", voice=VoiceOptions())
    opening = assert_mouth_follows(stock_assets, chunks)
    # open on the vowels: frames inside a vowel are more open than frames inside p/b/m or pauses
    step = 40.0
    def frames_of(kind):  # noqa: ANN001, ANN202
        out = []
        for c in chunks:
            ph = c.phonemes
            for a, b in zip(ph, ph[1:]):
                if kind(a.phoneme) and b.start_ms - a.start_ms >= step:
                    k = int((a.start_ms + b.start_ms) / 2 // step)
                    if k < len(opening):
                        out.append(opening[k])
        return out
    # the median frame inside an open vowel is more open than inside p/b/m or a pause
    vowels = frames_of(lambda p: viseme(p)[0] >= 0.6)
    closed = frames_of(lambda p: viseme(p)[0] == 0.0)
    assert vowels and closed and np.median(vowels) > np.median(closed), (np.median(vowels), np.median(closed))
