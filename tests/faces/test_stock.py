"""The stock face: scikit-image's astronaut portrait trained as a photo face, ready to render."""
from __future__ import annotations

import json

import numpy as np

from faces.renderer import create_renderer
from faces.training.stock import stock_portrait


def test_stock_portrait_ships_offline():
    img = stock_portrait()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8


def test_stock_face_is_built_and_renders(stock_dir):
    info = json.loads((stock_dir / "assets.json").read_text())
    assert info["kind"] == "photo" and info["size"] == 512 and info["version"] == 2
    assert (stock_dir / "thumbnail.jpg").stat().st_size > 5_000
    assert (stock_dir / "preview.mp4").read_bytes()[4:8] == b"ftyp"
    r = create_renderer(stock_dir)
    frames = [r.next_frame(40.0 * k) for k in range(5)]
    assert all(f.shape == (512, 512, 3) for f in frames)
    # The renderer shares one loaded copy of a face between sessions.
    assert create_renderer(stock_dir).assets is r.assets


def test_version_1_assets_still_load(stock_assets, tmp_path):
    """Folders written by the first asset format (one still, patches with their own alphas)
    load and render; a photo face is rebuilt from its still with the current code."""
    from faces.renderer import FaceRendererEngine
    from faces.training import load_assets
    from faces.assets import assets_current

    a = stock_assets
    np.savez_compressed(tmp_path / "frames.npz", frames=a.frames[:1])
    alpha = (np.broadcast_to(a.mouth_alpha, a.mouth.shape[:4]) * 255).astype(np.uint8)
    np.savez_compressed(tmp_path / "patches.npz", mouth=a.mouth, mouth_alpha=alpha, eyes=a.eyes,
                        eyes_alpha=(np.broadcast_to(a.eyes_alpha, a.eyes.shape[:3]) * 255).astype(np.uint8))
    np.savez_compressed(tmp_path / "mask.npz", mask=a.person_mask[:1])
    info = {"kind": "photo", "size": 512, "fps": 25, "idle_frames": 1, "mouth_roi": list(a.info.mouth_roi),
            "eye_roi": list(a.info.eye_roi), "mouth_center": list(a.info.mouth_center),
            "face_box": list(a.info.face_box), "motion": {"dx": 2.5}, "version": 1}
    (tmp_path / "assets.json").write_text(json.dumps(info))
    assert not assets_current(tmp_path)
    old = load_assets(tmp_path)
    assert len(old.frames) > 1 and old.mouth.shape[:2] == a.mouth.shape[:2]
    assert FaceRendererEngine(old).next_frame(0.0).shape == (512, 512, 3)
