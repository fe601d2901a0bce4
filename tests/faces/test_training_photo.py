"""Face training from a single photo: the photo is animated into the same assets a video
gives (idle loop with head motion, mouth shapes with an interior, eyelids), and bad photos
raise TrainingError with the right code."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from faces.assets import BLINK_LEVELS, OPEN_LEVELS, SHAPES
from faces.renderer import FaceRendererEngine
from faces.training import TrainingError, load_assets, train_from_image
from faces.training.stock import stock_portrait

pytestmark = pytest.mark.slow


def _write(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def test_photo_trains_to_animated_assets(tmp_path):
    # A different framing than the stock face: off-centre, with a border, as a JPEG.
    photo = np.pad(stock_portrait(), ((60, 0), (0, 120), (0, 0)), mode="edge")
    seen: list[int] = []
    info = train_from_image(_write(tmp_path / "me.jpg", photo), tmp_path / "face", progress=seen.append)
    assert info.kind == "photo" and seen[-1] == 100 and seen == sorted(seen)
    assert (tmp_path / "face" / "thumbnail.jpg").is_file() and (tmp_path / "face" / "preview.mp4").is_file()
    assets = load_assets(tmp_path / "face")
    assert assets.frames.shape == (info.idle_frames, 512, 512, 3) and info.idle_frames >= 50
    assert assets.mouth.shape[:2] == (len(SHAPES), OPEN_LEVELS) and len(assets.eyes) == BLINK_LEVELS
    # The face is framed the same way whatever the photo: eyes level, near the middle.
    from faces.training import landmarks as L

    face = L.measure_faces(assets.frames[0])[0]
    left, right = L.eye_centres(face.points)
    assert abs(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))) < 2.0
    assert 200 < (left[0] + right[0]) / 2 < 312
    # Opening the mouth darkens the gap between the lips; closing the eyes darkens the lids.
    x0, y0, _, _ = info.mouth_roi
    cx, cy = info.mouth_center
    r = int(0.3 * info.iod)
    gap = (slice(int(cy - y0), int(cy - y0 + r)), slice(int(cx - x0 - r), int(cx - x0 + r)))
    dark = [float((assets.mouth[0, k][gap].mean(axis=2) < 90).mean()) for k in range(OPEN_LEVELS)]
    assert dark[-1] > dark[0] + 0.2 and dark == sorted(dark), dark
    # Blinking changes the eyes a lot, the rest of the eye region little.
    diff = np.abs(assets.eyes[-1].astype(np.int16) - assets.eyes[0]).mean(axis=2)
    assert diff.max() > 60
    # The idle loop moves the head but not the background.
    corner = assets.frames[:, :30, :30].astype(np.int16)
    assert np.abs(corner - corner[0]).max() <= 3
    face_px = assets.frames[:, 200:300, 200:300].astype(np.int16)
    assert np.abs(face_px - face_px[0]).mean(axis=(1, 2, 3)).max() > 1.0
    assert FaceRendererEngine(assets).next_frame(0.0).shape == (512, 512, 3)


@pytest.mark.parametrize("make, code", [
    (lambda a: np.hstack([a, a[:, ::-1]]), "second_person_detected"),
    (lambda a: np.full_like(a, 128) + np.linspace(0, 60, a.shape[1], dtype=np.uint8)[None, :, None], "no_face_detected"),
    (lambda a: (a * 0.18).astype(np.uint8), "poor_lighting"),
    (lambda a: cv2.resize(a, (100, 100)), "improper_distance"),
    (lambda a: np.pad(a, ((1000, 1000), (1000, 1000), (0, 0)), mode="edge"), "improper_distance"),
])
def test_bad_photos_raise_the_right_code(tmp_path, make, code):
    path = _write(tmp_path / "photo.png", make(stock_portrait()))
    with pytest.raises(TrainingError) as err:
        train_from_image(path, tmp_path / "out")
    assert err.value.code == code, err.value.message


def test_garbage_bytes_are_not_a_photo(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(np.random.default_rng(1).bytes(50_000))
    with pytest.raises(TrainingError) as err:
        train_from_image(path, tmp_path / "out")
    assert err.value.code == "video_format"
