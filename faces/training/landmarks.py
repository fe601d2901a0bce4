"""Face detection and the 468/478-point face mesh (MediaPipe 0.10.21, which ships its models),
plus the geometry OpenCVI derives from the mesh (no blendshape model ships offline)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

# Landmark indices of the MediaPipe face mesh.
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
LOWER_LIP = [146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324]
UPPER_INNER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
CHIN = [152, 148, 176, 149, 150, 377, 400, 378, 379, 175, 199, 200, 18, 83, 313, 201, 421, 208, 428]
JAW_SIDES = [136, 172, 58, 132, 365, 397, 288, 361, 169, 394, 135, 364]
MOUTH_CORNERS = [61, 291, 78, 308]
FIXED_FACE = [1, 2, 98, 327, 205, 425, 50, 280, 187, 411, 147, 376, 123, 352, 116, 345]
LEFT_EYE_UPPER = [159, 158, 157, 160, 161, 246]
LEFT_EYE_LOWER = [145, 144, 153, 163, 7, 154]
RIGHT_EYE_UPPER = [386, 385, 384, 387, 388, 466]
RIGHT_EYE_LOWER = [374, 373, 380, 390, 249, 381]
LEFT_EYE_RING = [33, 133, 70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 226, 110, 24, 23, 22, 26, 112, 243]
RIGHT_EYE_RING = [263, 362, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276, 446, 339, 254, 253, 252, 256, 341, 463]
# Points that barely move with expression: used to stabilise frames against a reference.
STABLE = [33, 133, 362, 263, 1, 168, 6, 197, 195, 10, 234, 454]
# Polylines, ordered left to right in the image (corner to corner).
UPPER_INNER_CURVE = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER_CURVE = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
UPPER_OUTER_CURVE = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER_CURVE = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
# The jaw from one ear to the other, through the chin.
JAW_CURVE = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
# Eyelids of the eye on the image's left (the person's right) and on the image's right.
LEFT_UPPER_LID = [33, 246, 161, 160, 159, 158, 157, 173, 133]
LEFT_LOWER_LID = [33, 7, 163, 144, 145, 153, 154, 155, 133]
RIGHT_UPPER_LID = [362, 398, 384, 385, 386, 387, 388, 466, 263]
RIGHT_LOWER_LID = [362, 382, 381, 380, 374, 373, 390, 249, 263]

_local = threading.local()


def _mesh(static: bool):
    import mediapipe as mp

    key = "mesh_static" if static else "mesh_video"
    mesh = getattr(_local, key, None)
    if mesh is None:
        mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=3, refine_landmarks=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5,
        )
        setattr(_local, key, mesh)
    return mesh


def reset_tracking() -> None:
    """Forget the video-mode mesh's tracking state (call before a new video)."""
    mesh = getattr(_local, "mesh_video", None)
    if mesh is not None:
        mesh.close()
        _local.mesh_video = None


def _detector():
    import mediapipe as mp

    det = getattr(_local, "detector", None)
    if det is None:
        # model_selection=1: the full-range model also finds small or distant faces.
        det = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        _local.detector = det
    return det


@dataclass
class FaceMeasure:
    points: np.ndarray  # (468, 2) pixel coordinates
    width: float  # face width in pixels
    height: float
    yaw_deg: float
    pitch_deg: float
    mouth_open: float  # inner-lip gap / face height
    eye_open: float  # mean eyelid gap / eye width

    @property
    def center(self) -> np.ndarray:
        return self.points[[1, 168, 152, 10]].mean(axis=0)


def eye_centres(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pts[[33, 133]].mean(axis=0), pts[[362, 263]].mean(axis=0)


def interocular(pts: np.ndarray) -> float:
    left, right = eye_centres(pts)
    return float(np.linalg.norm(right - left))


def canonical_transform(m: "FaceMeasure", size: int, *, zoom: float = 1.95,
                        frame: tuple[int, int] | None = None) -> np.ndarray:
    """The similarity that puts a face into the S×S canonical crop: eyes level, head and
    shoulders framed the same way for photo and video faces. With ``frame`` (width, height)
    the crop stays inside the picture where it can."""
    left, right = eye_centres(m.points)
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    half = zoom * max(m.width, m.height) / 2
    cx, cy = m.center
    # A little more room below the chin than above the head; the offset is along the face's
    # own vertical axis, so a tilted head is framed like an upright one.
    a = np.radians(angle)
    cx, cy = cx - np.sin(a) * 0.08 * half, cy + np.cos(a) * 0.08 * half
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, size / (2 * half))
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    if frame is not None:
        matrix = _fit_inside(matrix, size, frame)
    return matrix.astype(np.float32)


def _fit_inside(matrix: np.ndarray, size: int, frame: tuple[int, int]) -> np.ndarray:
    """Move (and if need be tighten) the crop so that it does not reach past the picture's
    edges, where padding would show as streaks; the face may then sit a little off-centre."""
    fw, fh = frame
    m = np.vstack([matrix, [0, 0, 1]]).astype(np.float64)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    for _ in range(3):
        inv = np.linalg.inv(m)
        src = corners @ inv[:2].T
        span = src.max(axis=0) - src.min(axis=0)
        tighten = max(span[0] / fw, span[1] / fh)
        if tighten > 1.0:
            # Zoom in about the crop's centre (at most 25%: beyond that, padding it is).
            z = min(tighten, 1.25)
            m = np.array([[z, 0, size / 2 * (1 - z)], [0, z, size / 2 * (1 - z)], [0, 0, 1]]) @ m
            continue
        lo, hi = src.min(axis=0), src.max(axis=0)
        shift = np.array([max(0.0, -lo[0]) - max(0.0, hi[0] - fw), max(0.0, -lo[1]) - max(0.0, hi[1] - fh)])
        if not shift.any():
            break
        # Moving the window by +shift in the picture moves the content by −shift in the crop.
        m[:2, 2] -= m[:2, :2] @ shift
    return m[:2]


def transform_points(pts: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (np.c_[pts, np.ones(len(pts))] @ np.asarray(matrix, np.float64).T).astype(np.float32)


def curve_y(pts: np.ndarray, idx: list[int], xs: np.ndarray) -> np.ndarray:
    """The y of a landmark polyline at columns ``xs`` (NaN outside its x range)."""
    p = pts[idx].astype(np.float64)
    order = np.argsort(p[:, 0], kind="stable")
    return np.interp(xs, p[order, 0], p[order, 1], left=np.nan, right=np.nan)


def count_faces(rgb: np.ndarray) -> int:
    result = _detector().process(rgb)
    return len(result.detections or [])


def detect_faces(rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Face boxes ``(x0, y0, x1, y1, score)`` in pixels, largest first (full-range detector,
    which also finds faces that are small in the picture)."""
    h, w = rgb.shape[:2]
    boxes = []
    for d in _detector().process(rgb).detections or []:
        b = d.location_data.relative_bounding_box
        boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h, float(d.score[0])))
    boxes.sort(key=lambda b: -(b[2] - b[0]))
    return boxes


def measure_in_box(rgb: np.ndarray, box: tuple[float, ...], *, margin: float = 1.2) -> FaceMeasure | None:
    """The mesh of the face in ``box``, measured on a crop around it (the mesh's own detector
    misses faces that are small in a large picture); points in the picture's coordinates."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box[:4]
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = min(1.0, 640.0 / side) if side > 640 else 640.0 / side if side < 256 else 1.0
    m = np.array([[scale, 0, (side / 2 - cx) * scale], [0, scale, (side / 2 - cy) * scale]], np.float32)
    crop = cv2.warpAffine(rgb, m, (int(side * scale), int(side * scale)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    faces = measure_faces(crop)
    if not faces:
        return None
    pts = faces[0].points
    back = (pts - m[:, 2]) / scale
    return _measure(back.astype(np.float32))


def measure_faces(rgb: np.ndarray, *, static: bool = True) -> list[FaceMeasure]:
    """Every face's mesh in an RGB frame (largest first)."""
    h, w = rgb.shape[:2]
    result = _mesh(static).process(rgb)
    faces = []
    for lm in result.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h) for p in lm.landmark[:468]], dtype=np.float32)
        faces.append(_measure(pts))
    faces.sort(key=lambda f: -f.width)
    return faces


def _measure(pts: np.ndarray) -> FaceMeasure:
    left, right = pts[234], pts[454]
    top, chin = pts[10], pts[152]
    width = float(np.linalg.norm(right - left))
    height = float(np.linalg.norm(chin - top))
    nose = pts[1]
    mid = (left + right) / 2
    # Yaw from how far the nose tip sits from the cheeks' midpoint (±1 ≈ ±60°).
    yaw = float(np.degrees(np.arcsin(np.clip(2 * (nose[0] - mid[0]) / max(width, 1), -1, 1))))
    eye_mid = (pts[33] + pts[263]) / 2
    pitch = float(np.degrees(np.arcsin(np.clip(((nose[1] - eye_mid[1]) / max(height, 1) - 0.28) * 3, -1, 1))))
    mouth = float(np.linalg.norm(pts[14] - pts[13]) / max(height, 1))
    eye_l = np.linalg.norm(pts[159] - pts[145]) / max(np.linalg.norm(pts[33] - pts[133]), 1)
    eye_r = np.linalg.norm(pts[386] - pts[374]) / max(np.linalg.norm(pts[362] - pts[263]), 1)
    return FaceMeasure(pts, width, height, yaw, pitch, mouth, float((eye_l + eye_r) / 2))
