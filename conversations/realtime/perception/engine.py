"""The embedded perception engine: MediaPipe face mesh and selfie segmentation on CPU.

One ``MediaPipePerception`` per process (``get_engine()``), shared by every session. Its
models live in one engine-owned worker thread, so calls from several sessions are served
one frame at a time in arrival order and never touch the event loop. A frame costs
~6-8 ms at 640×480 (larger frames are scaled down to 640 wide first).

What it reads from one RGB frame (``FrameReading``):

- faces (MediaPipe's short-range detector inside the face mesh: faces wider than about a
  sixth of the frame, i.e. people within ~2 m of a webcam), for each: head pose from
  ``cv2.solvePnP`` against MediaPipe's canonical face model, corrected for where the face
  sits in the frame (a face off-centre that looks at the camera reads as frontal); iris
  gaze (only with ``iris=True``: +4 ms a frame); eye aspect ratio (blinks, closed eyes); mouth opening; a smile score from mouth
  width and corner lift; eyebrow height;
- scene luma, the main face's luma, and a small grey thumbnail (for motion);
- when no face is found, the share of the frame segmented as a person (someone turned away
  from the camera still counts as there).

``PerceptionStream`` (``engine.stream()``, one per session) turns readings into
``PerceptionSignals`` with the session's own neutral baseline: the head pose, eye opening
and brow height the user shows when settled in front of the camera (cameras sit above,
below or beside screens, so "looking at the screen" is relative to that) and motion
between consecutive analysed frames.
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..engines.base import EngineError, PerceptionEngine, PerceptionSignals

logger = logging.getLogger(__name__)

#: frames wider than this are scaled down before analysis (cost stays ~constant)
MAX_ANALYSIS_WIDTH = 640

# MediaPipe's canonical face model (modules/face_geometry/data/canonical_face_model.obj,
# centimetres, y up, z towards the camera) for the landmarks used to solve the head pose.
_CANONICAL = {
    1: (0.0, -1.126865, 7.475604),  # nose tip
    4: (0.0, -0.463170, 7.586580),  # nose tip (upper)
    10: (0.0, 8.261778, 4.481535),  # forehead top
    152: (0.0, -9.403378, 4.264492),  # chin
    33: (-4.445859, 2.663991, 3.173422),  # right eye, outer corner
    263: (4.445859, 2.663991, 3.173422),  # left eye, outer corner
    61: (-2.456206, -4.342621, 4.283884),  # mouth, right corner
    291: (2.456206, -4.342621, 4.283884),  # mouth, left corner
}
_POSE_IDX = list(_CANONICAL)
# to OpenCV's camera axes: x right, y down, z away from the camera
_POSE_MODEL = np.array([_CANONICAL[i] for i in _POSE_IDX], dtype=np.float64) * np.array([1.0, -1.0, -1.0])

# Landmark indices (MediaPipe face mesh, 468 points + 10 iris points with refine_landmarks).
_EYE_R = (33, 133, (160, 144), (158, 153))  # outer, inner, two upper/lower lid pairs
_EYE_L = (263, 362, (385, 380), (387, 373))
_IRIS_R, _IRIS_L = 468, 473
_MOUTH_CORNERS = (61, 291)
_LIP_INNER = (13, 14)
_BROW_EYE = ((105, 159), (334, 386))  # mid-brow above the upper lid, each side

THUMB_W, THUMB_H = 64, 48


@dataclass
class FaceReading:
    """One face, measured in the frame (angles in degrees, ratios scale-free)."""

    box: tuple[float, float, float, float]  # x, y, w, h as shares of the frame
    yaw: float
    pitch: float
    roll: float
    gaze_x: float
    eye_openness: float  # eye aspect ratio, both eyes averaged
    mouth_open: float  # inner lip gap / outer-eye-corner distance
    mouth_width: float  # mouth corner distance / outer-eye-corner distance
    corner_lift: float  # how far the mouth corners sit above the lip centre / eye distance
    brow_height: float  # brow to upper lid / outer-eye-corner distance
    brightness: float  # mean luma of the face box, 0..1

    @property
    def size(self) -> float:
        return self.box[2]

    @property
    def smile(self) -> float:
        """0..1 from geometry alone: a wide mouth and raised corners. Calibrated so a broad
        smile reads ~1 and a relaxed mouth (width ≈ 0.55 of the outer eye distance,
        corners level with the lips) reads ~0."""
        width = _clip((self.mouth_width - 0.58) / 0.10)
        lift = _clip((self.corner_lift - 0.02) / 0.07)
        return round(float(0.5 * width + 0.5 * lift), 3)


@dataclass
class FrameReading:
    """Everything one frame yields, before any per-session interpretation."""

    width: int
    height: int
    faces: list[FaceReading] = field(default_factory=list)
    brightness: float = 0.0  # mean luma of the whole frame, 0..1
    thumb: np.ndarray | None = None  # THUMB_H×THUMB_W uint8 grey, for motion
    person_fraction: float | None = None  # segmented person share (only when no face)
    elapsed_ms: float = 0.0  # wall time in ``read``
    cpu_ms: float = 0.0  # CPU time of the calling thread in ``read`` (MediaPipe's own threads excluded)

    @property
    def main_face(self) -> FaceReading | None:
        return max(self.faces, key=lambda f: f.size) if self.faces else None


def _clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


class MediaPipePerception(PerceptionEngine):
    """Process-wide embedded perception engine (MediaPipe 0.10.21 solutions API)."""

    name = "mediapipe"

    def __init__(self, *, max_faces: int = 3, min_confidence: float = 0.5, segmentation: bool = True,
                 iris: bool = False, max_width: int = MAX_ANALYSIS_WIDTH) -> None:
        try:
            import cv2  # noqa: F401
            import mediapipe  # noqa: F401
        except ImportError as exc:  # pragma: no cover - both are requirements
            raise EngineError(f"the embedded perception engine needs mediapipe and opencv: {exc}",
                              engine=self.name) from exc
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self.segmentation = segmentation
        # Iris landmarks (gaze) need MediaPipe's attention mesh: ~4 ms more per frame, which
        # the 12 ms budget does not leave room for by default. Without them gaze_x stays 0.
        self.iris = iris
        self.max_width = max_width
        # One worker thread owns the MediaPipe graphs: they are not safe to share between
        # threads, and one frame at a time is what a 2-core machine can give perception.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perception")
        self._mesh = None
        self._segmenter = None
        self._closed = False
        self.frames = 0

    # ------------------------------------------------------------------ worker side
    def _load(self) -> None:
        import mediapipe as mp

        if self._mesh is None:
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,  # no tracking state: frames of many sessions interleave
                max_num_faces=self.max_faces, refine_landmarks=self.iris,
                min_detection_confidence=self.min_confidence)
        if self.segmentation and self._segmenter is None:
            self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)

    def read(self, frame: np.ndarray) -> FrameReading:
        """Measure one RGB frame (H×W×3 uint8). Blocking: call it in the engine's thread
        (``read_async``) or from a thread of your own when nothing else uses the engine."""
        import cv2

        if self._closed:
            raise EngineError("the perception engine is closed", engine=self.name)
        started, cpu_started = time.perf_counter(), time.thread_time()
        rgb = np.asarray(frame)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise EngineError(f"expected an RGB frame H×W×3, got shape {rgb.shape}", engine=self.name,
                              code="bad_frame")
        if rgb.dtype != np.uint8:
            rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        h, w = rgb.shape[:2]
        if w > self.max_width:
            scale = self.max_width / w
            rgb = cv2.resize(rgb, (self.max_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        self._load()
        small = cv2.resize(rgb, (160, 120), interpolation=cv2.INTER_AREA)
        grey_small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        thumb = cv2.resize(grey_small, (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
        reading = FrameReading(width=w, height=h, brightness=float(grey_small.mean()) / 255.0, thumb=thumb)
        result = self._mesh.process(rgb)
        for landmarks in result.multi_face_landmarks or ():
            pts = np.array([(lm.x * w, lm.y * h) for lm in landmarks.landmark], dtype=np.float64)
            face = _measure_face(pts, w, h, grey_small)
            if face is not None:
                reading.faces.append(face)
        if not reading.faces and self._segmenter is not None:
            mask = self._segmenter.process(rgb).segmentation_mask
            reading.person_fraction = float((mask > 0.5).mean()) if mask is not None else 0.0
        reading.elapsed_ms = 1000.0 * (time.perf_counter() - started)
        reading.cpu_ms = 1000.0 * (time.thread_time() - cpu_started)
        self.frames += 1
        return reading

    # ------------------------------------------------------------------ async side
    async def read_async(self, frame: np.ndarray) -> FrameReading:
        """``read`` in the engine's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.read, frame)

    async def analyse(self, frame: np.ndarray, *, t_ms: float) -> PerceptionSignals:
        """One frame on its own (no session baseline, no motion): see ``stream()``."""
        return PerceptionStream(self).signals(await self.read_async(frame), t_ms)

    def stream(self, **kwargs: float) -> PerceptionStream:
        """A per-session reader with its own neutral baseline and motion memory."""
        return PerceptionStream(self, **kwargs)

    def close(self) -> None:
        """Free the models (the process-wide engine normally lives until exit)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        for model in (self._mesh, self._segmenter):
            if model is not None:
                model.close()
        self._mesh = self._segmenter = None


def _measure_face(pts: np.ndarray, w: int, h: int, grey_small: np.ndarray) -> FaceReading | None:
    import cv2

    eye_dist = float(np.linalg.norm(pts[33] - pts[263]))
    if eye_dist < 4.0:
        return None
    x0, y0 = pts[:468].min(axis=0)
    x1, y1 = pts[:468].max(axis=0)
    box = (max(0.0, float(x0) / w), max(0.0, float(y0) / h), float(x1 - x0) / w, float(y1 - y0) / h)

    # Head pose against the canonical face, with a pinhole camera of ~65° horizontal view.
    focal = float(w)
    camera = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], dtype=np.float64)
    # SQPnP: a global solution in ~0.2 ms (the iterative solver without a guess took ~5 ms)
    ok, rvec, tvec = cv2.solvePnP(_POSE_MODEL, np.ascontiguousarray(pts[_POSE_IDX]), camera, None,
                                  flags=cv2.SOLVEPNP_SQPNP)
    yaw = pitch = roll = 0.0
    if ok:
        rot, _ = cv2.Rodrigues(rvec)
        yaw = math.degrees(math.asin(_clip(-rot[2, 0], -1.0, 1.0)))
        pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
        roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
        tx, ty, tz = (float(v) for v in tvec.ravel())
        if tz > 0:
            # relative to the line of sight: a face off-centre that faces the camera is frontal
            yaw -= math.degrees(math.atan2(tx, tz))
            pitch += math.degrees(math.atan2(ty, tz))

    def ear(eye: tuple) -> float:
        outer, inner, (a1, b1), (a2, b2) = eye
        width = np.linalg.norm(pts[outer] - pts[inner])
        if width <= 0:
            return 0.0
        return float((np.linalg.norm(pts[a1] - pts[b1]) + np.linalg.norm(pts[a2] - pts[b2])) / (2 * width))

    def gaze(eye: tuple, iris: int) -> float:
        outer, inner = pts[eye[0]], pts[eye[1]]
        left, right = (outer, inner) if outer[0] < inner[0] else (inner, outer)
        span = right[0] - left[0]
        if span <= 0 or len(pts) <= iris:
            return 0.0
        return float(2.0 * (pts[iris][0] - left[0]) / span - 1.0)

    lip_gap = float(np.linalg.norm(pts[_LIP_INNER[0]] - pts[_LIP_INNER[1]]))
    mouth_w = float(np.linalg.norm(pts[_MOUTH_CORNERS[0]] - pts[_MOUTH_CORNERS[1]]))
    lip_centre_y = (pts[_LIP_INNER[0]][1] + pts[_LIP_INNER[1]][1]) / 2
    corners_y = (pts[_MOUTH_CORNERS[0]][1] + pts[_MOUTH_CORNERS[1]][1]) / 2
    brow = float(np.mean([np.linalg.norm(pts[b] - pts[e]) for b, e in _BROW_EYE]))

    gh, gw = grey_small.shape
    bx0, by0 = int(box[0] * gw), int(box[1] * gh)
    bx1, by1 = int(math.ceil((box[0] + box[2]) * gw)), int(math.ceil((box[1] + box[3]) * gh))
    patch = grey_small[max(0, by0):max(by0 + 1, by1), max(0, bx0):max(bx0 + 1, bx1)]
    face_luma = float(patch.mean()) / 255.0 if patch.size else 0.0

    return FaceReading(
        box=box, yaw=yaw, pitch=pitch, roll=roll,
        gaze_x=(gaze(_EYE_R, _IRIS_R) + gaze(_EYE_L, _IRIS_L)) / 2,
        eye_openness=(ear(_EYE_R) + ear(_EYE_L)) / 2,
        mouth_open=lip_gap / eye_dist, mouth_width=mouth_w / eye_dist,
        corner_lift=(lip_centre_y - corners_y) / eye_dist, brow_height=brow / eye_dist,
        brightness=face_luma,
    )


@dataclass
class Baseline:
    """The user's neutral pose and face, learnt from their first settled frames."""

    yaw: float = 0.0
    pitch: float = 0.0
    eye_openness: float = 0.30
    brow_height: float = 0.0
    samples: int = 0

    @property
    def ready(self) -> bool:
        return self.samples >= PerceptionStream.BASELINE_SAMPLES


class PerceptionStream:
    """One session's view through the shared engine: baseline, attention and motion.

    Attention: the head is within ``yaw_limit`` / ``pitch_limit`` degrees of the baseline
    pose, the irises are not far to one side, and the eyes are open.
    """

    #: frontal-ish frames that make the baseline (their median)
    BASELINE_SAMPLES = 5
    #: a frame counts towards the baseline only if its raw pose is within these limits
    BASELINE_MAX_YAW = 30.0
    BASELINE_MAX_PITCH = 40.0
    #: after the baseline is set, attentive frames pull it this much (slow drift: posture)
    BASELINE_ADAPT = 0.03
    #: eyes count as closed below this share of the baseline eye opening (or absolute value)
    EYES_CLOSED_RATIO = 0.55
    EYES_CLOSED_ABS = 0.12
    #: person segmentation share that counts as someone in view without a face
    PERSON_FRACTION = 0.05

    def __init__(self, engine: MediaPipePerception | None, *, yaw_limit: float = 20.0,
                 pitch_limit: float = 18.0, gaze_limit: float = 0.55) -> None:
        self.engine = engine
        self.yaw_limit = yaw_limit
        self.pitch_limit = pitch_limit
        self.gaze_limit = gaze_limit
        self.baseline = Baseline()
        self._pending: list[tuple[float, float, float, float]] = []
        self._prev_thumb: np.ndarray | None = None

    async def analyse(self, frame: np.ndarray, *, t_ms: float) -> PerceptionSignals:
        if self.engine is None:
            raise EngineError("this perception stream has no engine", engine="mediapipe")
        return self.signals(await self.engine.read_async(frame), t_ms)

    def signals(self, reading: FrameReading, t_ms: float) -> PerceptionSignals:
        """Interpret one reading for this session (updates the baseline and motion memory)."""
        motion = 0.0
        if reading.thumb is not None:
            if self._prev_thumb is not None and self._prev_thumb.shape == reading.thumb.shape:
                diff = np.abs(reading.thumb.astype(np.int16) - self._prev_thumb.astype(np.int16))
                motion = float(diff.mean()) / 255.0
            self._prev_thumb = reading.thumb
        face = reading.main_face
        sig = PerceptionSignals(
            t_ms=t_ms, face_count=len(reading.faces), brightness=round(reading.brightness, 3),
            motion=round(motion, 4), analysis_ms=round(reading.elapsed_ms, 2),
            person_visible=bool(reading.person_fraction is not None
                                and reading.person_fraction >= self.PERSON_FRACTION),
        )
        sig.present = sig.face_count > 0 or sig.person_visible
        if face is None:
            return sig
        self._learn(face)
        b = self.baseline
        sig.yaw_deg = round(face.yaw - b.yaw, 1)
        sig.pitch_deg = round(face.pitch - b.pitch, 1)
        sig.roll_deg = round(face.roll, 1)
        sig.gaze_x = round(face.gaze_x, 3)
        sig.eye_openness = round(face.eye_openness, 3)
        sig.eyes_closed = (face.eye_openness < self.EYES_CLOSED_ABS
                           or face.eye_openness < self.EYES_CLOSED_RATIO * b.eye_openness)
        sig.smile = float(face.smile)
        sig.mouth_open = round(_clip((face.mouth_open - 0.06) / 0.34), 3)
        sig.brow_raise = round(_clip((face.brow_height - b.brow_height) / max(b.brow_height, 1e-6) / 0.35)
                               if b.brow_height > 0 else 0.0, 3)
        sig.face_size = round(float(face.size), 3)
        sig.face_brightness = round(face.brightness, 3)
        sig.attentive = (abs(sig.yaw_deg) <= self.yaw_limit and abs(sig.pitch_deg) <= self.pitch_limit
                         and abs(sig.gaze_x) <= self.gaze_limit and not sig.eyes_closed)
        if b.ready and sig.attentive:
            a = self.BASELINE_ADAPT
            b.yaw += a * (face.yaw - b.yaw)
            b.pitch += a * (face.pitch - b.pitch)
        return sig

    def _learn(self, face: FaceReading) -> None:
        b = self.baseline
        if b.ready:
            return
        if abs(face.yaw) > self.BASELINE_MAX_YAW or abs(face.pitch) > self.BASELINE_MAX_PITCH:
            return
        if face.eye_openness < self.EYES_CLOSED_ABS:
            return  # a blink is not the neutral face
        self._pending.append((face.yaw, face.pitch, face.eye_openness, face.brow_height))
        arr = np.array(self._pending)
        b.yaw, b.pitch, b.eye_openness, b.brow_height = (float(v) for v in np.median(arr, axis=0))
        b.samples = len(self._pending)
        if b.ready:
            self._pending.clear()


_engine: MediaPipePerception | None = None
_engine_lock = threading.Lock()


def get_engine() -> MediaPipePerception:
    """The process-wide embedded engine (created on first use; models load on first frame)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = MediaPipePerception()
        return _engine
