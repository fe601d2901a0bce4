"""Version 1 asset folders, brought up to the current format with the current training code,
and :func:`load_assets`, which reads a folder of any version (the format itself, without the
training code, is ``faces.assets``)."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from faces import assets as fmt
from faces.assets import AssetsInfo, FaceAssets
from faces.training import landmarks as L
from faces.training.photo import assets_from_still, head_motion

logger = logging.getLogger(__name__)


def load_assets(out_dir: str | Path) -> FaceAssets:
    """Read a face's assets (any version) into memory."""
    return fmt.load_assets(out_dir, legacy=load_v1)


def load_v1(out_dir: Path, info: AssetsInfo) -> FaceAssets:
    """Version 1: one alpha per patch, and a photo face's motion applied at render time; bake
    that motion into frames now so the renderer has one code path."""
    frames = np.load(out_dir / "frames.npz")["frames"]
    if info.kind == "photo" and len(frames) == 1:
        # A version 1 photo face kept its canonical still: rebuild everything from it with the
        # current code (a few seconds, once per process) rather than render the old patches.
        faces = L.measure_faces(frames[0])
        if faces:
            logger.warning("face assets in %s are version 1: rebuilt in memory; retrain to save them", out_dir)
            return assets_from_still(frames[0], faces[0].points, kind="photo")
    patches = np.load(out_dir / "patches.npz")
    mask = np.load(out_dir / "mask.npz")["mask"]
    mouth = patches["mouth"]
    levels = mouth.shape[1]
    info.open_levels = [float(x) for x in np.linspace(0, 1, levels)]
    info.blink_closures = [float(x) for x in np.linspace(0.45, 1.0, patches["eyes"].shape[0])]
    mouth_alpha = patches["mouth_alpha"].reshape(-1, *mouth.shape[2:4])[0].astype(np.float32) / 255
    eyes_alpha = patches["eyes_alpha"].reshape(-1, *patches["eyes"].shape[1:3])[0].astype(np.float32) / 255
    affine = None
    if len(frames) == 1 and info.motion:
        cx, cy = info.mouth_center
        affine = head_motion(100, pivot=(cx, cy + 0.2 * info.size), scale=1.0)
        frames = np.stack([cv2.warpAffine(frames[0], m, frames.shape[1:3][::-1], flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE) for m in affine])
        mask = np.stack([cv2.warpAffine(mask[0], m, mask.shape[1:3][::-1], flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE) for m in affine])
    info.idle_frames = len(frames)
    info.motion = {}
    return FaceAssets(info=info, frames=frames, mouth=mouth, mouth_alpha=mouth_alpha, eyes=patches["eyes"],
                      eyes_alpha=eyes_alpha, person_mask=mask, frame_affine=affine)
