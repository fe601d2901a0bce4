"""Face training from a video, called directly (the Celery path is in test_training_worker):
a synthetic talking video trains to assets that render; two faces, no face, 5 fps, garbage
bytes, a dark picture, a face too far away, a swaying head and too short a video raise
TrainingError with the documented codes; the idle loop has no visible seam; the mouth set
comes from the speaking frames; the consent check."""
from __future__ import annotations

import numpy as np
import pytest

from bench.face_video import make_training_video
from faces.assets import OPEN_LEVELS, SHAPES
from faces.renderer import FaceRendererEngine
from faces.training import TrainingError, load_assets, train_from_video
from faces.training.probe import probe

pytestmark = pytest.mark.slow


def test_probe_reads_the_video(training_videos):
    info = probe(training_videos["good"])
    assert info.codec == "h264" and info.fps == 25 and info.has_audio and info.duration_s > 10
    assert (info.width, info.height) == (640, 480)


def test_synthetic_talking_video_trains_to_assets(video_face):
    info, seen, out = video_face["info"], video_face["progress"], video_face["dir"]
    assert info.kind == "video"
    assert seen[0] <= 5 and seen[-1] == 100 and seen == sorted(seen) and len(set(seen)) >= 6, seen
    for name in ("assets.json", "frames.npz", "patches.npz", "mask.npz", "thumbnail.jpg", "preview.mp4"):
        assert (out / name).is_file(), name
    assets = load_assets(out)
    assert assets.frames.shape[1:] == (512, 512, 3) and len(assets.frames) >= 50
    assert assets.mouth.shape[:2] == (len(SHAPES), OPEN_LEVELS)
    assert len(assets.person_mask) == len(assets.frames)
    # The mouth set spans closed to open: the widest level is darker between the lips.
    x0, y0, x1, y1 = assets.info.mouth_roi
    cx, cy = assets.info.mouth_center
    box = (slice(int(cy - y0 - 5), int(cy - y0 + 0.25 * assets.info.iod)),
           slice(int(cx - x0 - 0.3 * assets.info.iod), int(cx - x0 + 0.3 * assets.info.iod)))
    dark = [float((assets.mouth[0, k][box].mean(axis=2) < 90).mean()) for k in range(OPEN_LEVELS)]
    assert dark[-1] > dark[0] + 0.1, dark
    # It renders like any face.
    r = FaceRendererEngine(assets)
    assert r.next_frame(0.0).shape == (512, 512, 3)


def test_idle_loop_has_no_visible_seam(video_face_dir):
    assets = load_assets(video_face_dir)
    frames = assets.frames.astype(np.int16)
    steps = [float(np.abs(frames[k + 1] - frames[k]).mean()) for k in range(len(frames) - 1)]
    seam = float(np.abs(frames[0] - frames[-1]).mean())
    assert len(frames) >= 50
    # The jump from the last frame back to the first is no bigger than the loop's ordinary
    # frame-to-frame steps.
    assert seam <= np.percentile(steps, 95), (seam, np.percentile(steps, 95), max(steps))


@pytest.mark.parametrize("name, code", [
    ("two", "second_person_detected"),
    ("none", "no_face_detected"),
    ("slow", "video_fps"),
    ("garbage", "video_format"),
    ("dark", "poor_lighting"),
    ("far", "improper_distance"),
    ("moving", "excessive_movement_detected"),
])
def test_bad_videos_raise_the_right_code(training_videos, tmp_path, name, code):
    with pytest.raises(TrainingError) as err:
        train_from_video(training_videos[name], tmp_path / "out")
    assert err.value.code == code
    assert err.value.message
    assert not (tmp_path / "out" / "assets.json").exists()


def test_too_short_video_is_rejected(stock_assets, tmp_path):
    short = make_training_video(tmp_path / "short.mp4", stock_assets, seconds=4)
    with pytest.raises(TrainingError) as err:
        train_from_video(short, tmp_path / "out")
    assert err.value.code == "video_duration"


def test_consent_statement_is_checked(stock_assets, tmp_path):
    import asyncio

    from conversations.realtime.engines.registry import get_stt

    def transcribe(audio):
        return asyncio.run(get_stt().transcribe(audio, language="en")).text

    consent = make_training_video(
        tmp_path / "consent.mp4", stock_assets, listen_s=4,
        text="I, Mary Smith, am currently speaking and give consent to Open C V I to create an AI clone of me.")
    info = train_from_video(consent, tmp_path / "ok", consent=(transcribe, "Mary Smith"))
    assert info.kind == "video"
    with pytest.raises(TrainingError) as err:
        train_from_video(consent, tmp_path / "bad", consent=(transcribe, "Grace Hopper"))
    assert err.value.code == "consent_phrase_mismatch"
