"""Synthetic camera video from scikit-image's stock portrait (``data.astronaut()``,
NASA, public domain): the person present and facing the camera, turning the head (a 3D
reprojection of the face mesh, so the pose really changes), turned away (the face hidden,
the body still there), absent (the empty background), and two people side by side.

Frames are 640×480 RGB uint8, as a webcam would send them. Used by the perception tests,
the transport tests (through ``bench.client.CameraTrack``) and
``manage.py bench_perception``; it needs scikit-image and SciPy (both in requirements).
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np

W, H = 640, 480


@functools.lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@functools.lru_cache(maxsize=1)
def background() -> np.ndarray:
    """An empty room: a wall with a soft gradient and a little sensor noise."""
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    wall = np.array([150, 140, 128], np.float32) * (0.85 + 0.15 * (1 - y)) * (0.92 + 0.08 * x)
    rng = np.random.default_rng(7)
    return np.clip(wall + rng.normal(0, 3, (H, W, 3)), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def portrait() -> np.ndarray:
    """The person facing the camera, head and shoulders filling the frame like a webcam."""
    frame = background().copy()
    crop = _astronaut()[20:340, 90:410]  # head and shoulders, 320×320
    frame[:, 80:560] = cv2.resize(crop, (480, 480), interpolation=cv2.INTER_CUBIC)
    return frame


@functools.lru_cache(maxsize=1)
def two_people() -> np.ndarray:
    """Two people side by side (the same portrait twice, narrower crops)."""
    frame = background().copy()
    person = cv2.resize(_astronaut()[20:340, 130:330], (320, 480), interpolation=cv2.INTER_CUBIC)
    frame[:, :320] = person
    frame[:, 320:] = person
    return frame


@functools.lru_cache(maxsize=1)
def _mesh_points() -> tuple[np.ndarray, np.ndarray]:
    """The portrait's face mesh (pixels, with MediaPipe's depth) and its triangulation."""
    import mediapipe as mp
    from scipy.spatial import Delaunay

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=False) as mesh:
        result = mesh.process(portrait())
    lm = result.multi_face_landmarks[0].landmark
    # MediaPipe's depth is flatter than a real head: deepen it so a turn looks like one
    pts = np.array([(p.x * W, p.y * H, 1.5 * p.z * W) for p in lm], dtype=np.float64)
    return pts, Delaunay(pts[:, :2]).simplices


@functools.lru_cache(maxsize=16)
def head_turned(yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """The portrait with the head rotated in 3D: every mesh triangle is re-projected after
    rotating the mesh about its centre (painted far to near; the old face is blurred out)."""
    src = portrait()
    pts, tris = _mesh_points()
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    centre = pts.mean(axis=0)
    moved = (pts - centre) @ (rx @ ry).T + centre
    out = src.copy()
    hull = cv2.convexHull(pts[:, :2].astype(np.int32))
    mask = np.zeros((H, W), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    blurred = cv2.GaussianBlur(src, (0, 0), 25)
    out[mask > 0] = blurred[mask > 0]
    order = np.argsort([-moved[t, 2].mean() for t in tris])
    for i in order:
        t = tris[i]
        s = pts[t, :2].astype(np.float32)
        d = moved[t, :2].astype(np.float32)
        # triangles seen from behind after the turn are not drawn
        cross_s = (s[1, 0] - s[0, 0]) * (s[2, 1] - s[0, 1]) - (s[1, 1] - s[0, 1]) * (s[2, 0] - s[0, 0])
        cross_d = (d[1, 0] - d[0, 0]) * (d[2, 1] - d[0, 1]) - (d[1, 1] - d[0, 1]) * (d[2, 0] - d[0, 0])
        if np.sign(cross_s) != np.sign(cross_d):
            continue
        x, y, w, h = cv2.boundingRect(d)
        if w <= 0 or h <= 0:
            continue
        m = cv2.getAffineTransform(s, d - np.array([x, y], np.float32))
        patch = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        tri_mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(tri_mask, (d - np.array([x, y])).astype(np.int32), 255)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        sub = out[y0:y1, x0:x1]
        sel = tri_mask[y0 - y:y1 - y, x0 - x:x1 - x] > 0
        sub[sel] = patch[y0 - y:y1 - y, x0 - x:x1 - x][sel]
    return out


@functools.lru_cache(maxsize=1)
def turned_away() -> np.ndarray:
    """The back of the head: the face painted over with hair, the body still there."""
    src = portrait()
    pts, _ = _mesh_points()
    out = src.copy()
    x0, y0 = pts[:, :2].min(axis=0)
    x1, y1 = pts[:, :2].max(axis=0)
    centre = (int((x0 + x1) / 2), int((y0 + y1) / 2) - 8)
    axes = (int((x1 - x0) / 2) + 14, int((y1 - y0) / 2) + 16)
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    # hair: the colour of the top of the head, with strands (noise smeared downwards)
    hair_rgb = np.median(src[int(y0) - 30:int(y0) - 10, int(x0) + 20:int(x1) - 20].reshape(-1, 3), axis=0)
    rng = np.random.default_rng(3)
    strands = cv2.blur(rng.normal(0, 1, (H, W)).astype(np.float32), (3, 25))
    strands = strands / (np.abs(strands).max() + 1e-6)
    hair = np.clip(hair_rgb[None, None, :] * (0.8 + 0.35 * strands[..., None]), 0, 255).astype(np.uint8)
    out[mask > 0] = hair[mask > 0]
    return out


def jitter(frame: np.ndarray, t_s: float, amplitude_px: float = 1.5) -> np.ndarray:
    """Small head-and-camera movement so consecutive frames are not identical."""
    dx = amplitude_px * math.sin(2 * math.pi * 0.7 * t_s)
    dy = 0.6 * amplitude_px * math.sin(2 * math.pi * 0.45 * t_s + 1.0)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, m, (W, H), borderMode=cv2.BORDER_REPLICATE)


#: a scripted call: (start_s, scene) pairs; scene names map to frames below
SCRIPT: tuple[tuple[float, str], ...] = (
    (0.0, "present"),
    (6.0, "looking_away"),
    (10.0, "present"),
    (13.0, "absent"),
    (19.0, "present"),
    (23.0, "two_people"),
    (28.0, "present"),
)
SCRIPT_END_S = 32.0


def scene_frame(scene: str) -> np.ndarray:
    if scene == "present":
        return portrait()
    if scene == "looking_away":
        return head_turned(pitch_deg=-30.0)  # chin up, looking over the screen
    if scene == "turned_away":
        return turned_away()
    if scene == "absent":
        return background()
    if scene == "two_people":
        return two_people()
    raise ValueError(scene)


def scene_at(t_s: float, script: tuple[tuple[float, str], ...] = SCRIPT) -> str:
    current = script[0][1]
    for start, scene in script:
        if t_s >= start:
            current = scene
    return current


def frame_at(t_s: float, script: tuple[tuple[float, str], ...] = SCRIPT) -> np.ndarray:
    """The scripted call's camera frame at ``t_s`` seconds."""
    return jitter(scene_frame(scene_at(t_s, script)), t_s)
