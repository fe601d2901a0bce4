"""A face from a single photo: the photo itself is animated. The mouth shapes and eyelids come
from warping the photo's face mesh (``faces.training.patches``); the idle loop is the photo
with a subtle, seamless head motion baked in (the head moves, the background stays)."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from faces.assets import SIZE, AssetsInfo, FaceAssets, save_assets
from faces.training import landmarks as L
from faces.training.errors import TrainingError
from faces.training.patches import build_eye_set, build_mouth_set, person_mask
from faces.training.previews import write_previews

logger = logging.getLogger(__name__)

Progress = Callable[[int], None] | None
#: idle loop of a photo face: 4 s at 25 fps
PHOTO_LOOP_FRAMES = 100


def crop_to_face(img: np.ndarray, face: L.FaceMeasure, *, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The canonical S×S crop around a face (eyes level, head and shoulders) and its matrix."""
    m = L.canonical_transform(face, size, frame=(img.shape[1], img.shape[0]))
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out, m


def head_motion(n: int, *, pivot: tuple[float, float], scale: float = 1.0, seed: int = 3) -> np.ndarray:
    """``n`` similarity transforms (N, 2, 3) of a subtle head motion that loops seamlessly:
    sums of sines with whole numbers of cycles per loop (a slow sway, a slight nod, a tilt)."""
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * math.pi, 8)
    out = np.empty((n, 2, 3), np.float32)
    for k in range(n):
        a = 2 * math.pi * k / n
        rot = 0.8 * math.sin(a + ph[0]) + 0.35 * math.sin(2 * a + ph[1])
        dx = 1.8 * math.sin(a + ph[2]) + 0.6 * math.sin(3 * a + ph[3])
        dy = 1.0 * math.sin(2 * a + ph[4]) + 0.5 * math.sin(a + ph[5])
        sc = 1 + 0.004 * math.sin(a + ph[6])
        m = cv2.getRotationMatrix2D((float(pivot[0]), float(pivot[1])), rot * scale, 1 + (sc - 1) * scale)
        m[:, 2] += (dx * scale, dy * scale)
        out[k] = m
    return out


def bake_idle_loop(base: np.ndarray, pts: np.ndarray, mask: np.ndarray, *, n: int = PHOTO_LOOP_FRAMES
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo's idle loop: the head (face and hair) moves, the body and background stay, the
    neck takes up the difference. Returns frames, person masks (uint8) and per-frame affines."""
    size = base.shape[0]
    iod = L.interocular(pts)
    chin_y = float(pts[152][1])
    ys = np.arange(size, dtype=np.float32)[:, None]
    # Rigid down to below the mouth patches (so they sit exactly), then the neck bends.
    ramp = 1 - np.clip((ys - chin_y - 0.55 * iod) / (0.5 * iod), 0, 1)
    # The whole silhouette moves rigidly (grown, so the blur that softens the motion's edge
    # falls on the background, where stretching does not show).
    r = max(1, int(0.15 * iod))
    grown = cv2.dilate((mask > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    head = cv2.GaussianBlur(grown.astype(np.float32) * ramp, (0, 0), 0.07 * iod)
    pivot = (float(pts[152][0]), chin_y + 0.6 * iod)
    scale = iod / 109.0  # amplitudes were tuned on a 512 crop with an inter-ocular distance of ~109 px
    affines = head_motion(n, pivot=pivot, scale=scale)
    gx, gy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    frames = np.empty((n, *base.shape), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    mask8 = np.round(mask * 255).astype(np.uint8)
    for k, m in enumerate(affines):
        # Forward displacement d(p) = w(p) (M p − p); invert q = p + d(p) by one refinement.
        def disp(x, y):
            return (head * (m[0, 0] * x + m[0, 1] * y + m[0, 2] - x), head * (m[1, 0] * x + m[1, 1] * y + m[1, 2] - y))
        dx, dy = disp(gx, gy)
        sx, sy = gx - dx, gy - dy
        dx2 = cv2.remap(dx, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dy2 = cv2.remap(dy, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mx, my = gx - dx2, gy - dy2
        frames[k] = cv2.remap(base, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        masks[k] = cv2.remap(mask8, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return frames, masks, affines


def assets_from_still(base: np.ndarray, pts: np.ndarray, *, kind: str, frames: np.ndarray | None = None,
                      masks: np.ndarray | None = None, affine: np.ndarray | None = None) -> FaceAssets:
    """Assets around one canonical image: mouth shapes and eyelids warped from it; the idle
    loop is ``frames`` if given (a video face), else the image with head motion baked in."""
    mouth, mouth_alpha, mroi, _ = build_mouth_set(base, pts)
    eyes, eyes_alpha, eroi = build_eye_set(base, pts)
    if frames is None:
        frames, masks, affine = bake_idle_loop(base, pts, person_mask(base))
    elif masks is None:
        masks = np.round(person_mask(base) * 255).astype(np.uint8)[None]
    fx, fy = pts[:, 0], pts[:, 1]
    info = AssetsInfo(
        kind=kind, size=base.shape[0], idle_frames=len(frames), mouth_roi=mroi, eye_roi=eroi,
        mouth_center=(float(pts[[13, 14]][:, 0].mean()), float(pts[[13, 14]][:, 1].mean())),
        face_box=(int(fx.min()), int(fy.min()), int(fx.max()), int(fy.max())), iod=L.interocular(pts),
    )
    return FaceAssets(info=info, frames=frames, mouth=mouth, mouth_alpha=mouth_alpha, eyes=eyes,
                      eyes_alpha=eyes_alpha, person_mask=masks, frame_affine=affine)


def train_from_image(path: str | Path, out_dir: str | Path, *, progress: Progress = None) -> AssetsInfo:
    """Train a face from one photo (JPEG, PNG, WebP) of one person looking at the camera."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise TrainingError("video_format", "the file is not an image we can read (use a JPEG or PNG photo)")
    return train_from_array(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), out_dir, progress=progress)


def train_from_array(rgb: np.ndarray, out_dir: str | Path, *, progress: Progress = None) -> AssetsInfo:
    """Train a face from an RGB array (H×W×3 uint8)."""
    report = progress or (lambda n: None)
    report(5)
    if min(rgb.shape[:2]) < 128:
        raise TrainingError("improper_distance", "the photo is too small: use one at least 512 pixels wide")
    boxes = [b for b in L.detect_faces(rgb) if b[4] > 0.6]
    report(15)
    if len(boxes) > 1 and (boxes[1][2] - boxes[1][0]) > 0.5 * (boxes[0][2] - boxes[0][0]):
        raise TrainingError("second_person_detected", "the photo shows more than one person; use a photo of one")
    measured = L.measure_in_box(rgb, boxes[0]) if boxes else None
    faces = [measured] if measured is not None else L.measure_faces(rgb)
    if not faces:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if gray.mean() < 40 or gray.mean() > 225 or (gray > 250).mean() > 0.3:
            raise TrainingError("poor_lighting", "no face could be seen: the photo is too dark or too bright")
        raise TrainingError("no_face_detected", "no face was found in the photo")
    if len(faces) > 1 and faces[1].width > 0.5 * faces[0].width:
        raise TrainingError("second_person_detected", "the photo shows more than one person; use a photo of one")
    face = faces[0]
    if abs(face.yaw_deg) > 30:
        raise TrainingError("face_turned_away", "the face is turned away: use a photo looking at the camera")
    if face.width < 0.08 * rgb.shape[1]:
        raise TrainingError("improper_distance", "the face is too small in the photo: move closer or crop it")
    base, _ = crop_to_face(rgb, face)
    crop_faces = L.measure_faces(base)
    if not crop_faces:
        raise TrainingError("no_face_detected", "the face could not be measured after cropping")
    pts = crop_faces[0].points
    x0, y0 = pts.min(axis=0).astype(int).clip(0)
    x1, y1 = pts.max(axis=0).astype(int)
    brightness = float(cv2.cvtColor(base[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).mean())
    if brightness < 45:
        raise TrainingError("poor_lighting", "the face is too dark in the photo: use one taken in good light")
    if brightness > 235:
        raise TrainingError("poor_lighting", "the face is washed out (overexposed) in the photo")
    report(25)
    assets = assets_from_still(base, pts, kind="photo")
    assets.info.source = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                          "face_width": round(face.width / rgb.shape[1], 3), "brightness": round(brightness, 1)}
    report(80)
    out_dir = Path(out_dir)
    save_assets(out_dir, assets)
    report(90)
    write_previews(out_dir, assets)
    report(100)
    return assets.info
