"""The asset format: a trained face's render assets, on disk and in memory, and how they are
saved and loaded. It is the contract between the training code (``faces.training`` writes
assets) and the renderer (``faces.renderer`` reads them); it imports neither.

Everything lives in one folder:

- ``assets.json``: geometry and settings (:class:`AssetsInfo`); written last, so its presence
  means the folder is complete.
- ``frames.npz``: the idle loop, N frames of S×S RGB as JPEG bytes (a video face: its real
  listening frames, stabilised; a photo face: the photo with subtle head motion baked in), and
  per frame the 2×3 affine that maps the reference ("canonical") pose into that frame, so
  patches made in the canonical pose land where the head is.
- ``patches.npz``: mouth patches by shape × openness level and eyelid patches by closure, each
  a crop of the canonical pose (``mouth_roi`` / ``eye_roi``), with one feathered alpha each.
- ``mask.npz``: the person mask per idle frame (for greenscreen), uint8.
- ``thumbnail.jpg`` and ``preview.mp4`` (H.264, a few seconds of the face talking, silent).

Version 1 folders (one still + render-time motion) still load, through ``faces.training.load_assets``
(which passes :func:`load_assets` the training code's reader for them, ``faces.training.legacy``).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np

ASSETS_VERSION = 2
SIZE = 512
#: mouth shapes: neutral, wide (ee/s), round (oo/w)
SHAPES = ("neutral", "wide", "round")
OPEN_LEVELS = 10
#: eyelid closure of each blink patch (0 = open, 1 = shut)
BLINK_CLOSURES = (0.35, 0.7, 1.0)
BLINK_LEVELS = len(BLINK_CLOSURES)
JPEG_QUALITY = 93


@dataclass
class AssetsInfo:
    kind: str  # "photo" | "video"
    size: int = SIZE
    fps: int = 25
    idle_frames: int = 1
    mouth_roi: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 in the canonical pose
    eye_roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    mouth_center: tuple[float, float] = (0.0, 0.0)
    face_box: tuple[int, int, int, int] = (0, 0, 0, 0)
    #: version 1 only: head motion applied at render time (version 2 bakes it into the frames)
    motion: dict = field(default_factory=dict)
    blink_every_s: float = 4.0
    loop_seam: float = 0.0  # mean abs difference at the loop point (diagnostics)
    loop_step: float = 0.0  # median frame-to-frame difference inside the loop
    version: int = ASSETS_VERSION
    #: inter-ocular distance in the canonical pose (pixels)
    iod: float = 0.0
    #: openness (0..1) each mouth level stands for
    open_levels: list[float] = field(default_factory=lambda: [float(x) for x in np.linspace(0, 1, OPEN_LEVELS)])
    blink_closures: list[float] = field(default_factory=lambda: list(BLINK_CLOSURES))
    #: where the assets came from and what training measured (free-form diagnostics)
    source: dict = field(default_factory=dict)


@dataclass
class FaceAssets:
    info: AssetsInfo
    frames: np.ndarray  # (N, S, S, 3) uint8, the idle loop
    mouth: np.ndarray  # (len(SHAPES), OPEN_LEVELS, h, w, 3) uint8, canonical mouth_roi crops
    mouth_alpha: np.ndarray  # (h, w) float32 in 0..1
    eyes: np.ndarray  # (BLINK_LEVELS, h, w, 3) uint8, canonical eye_roi crops
    eyes_alpha: np.ndarray  # (h, w) float32
    person_mask: np.ndarray  # (N or 1, S, S) uint8, 255 = person
    #: (N, 2, 3) float32: canonical pose → idle frame k
    frame_affine: np.ndarray | None = None
    #: renderer-side caches (resized copies, greenscreen composites), shared by every session
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.frame_affine is None:
            self.frame_affine = np.repeat(np.eye(2, 3, dtype=np.float32)[None], len(self.frames), axis=0)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.frames, self.mouth, self.eyes, self.person_mask)))


def _encode_jpegs(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    blobs = []
    for f in frames:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        blobs.append(buf.reshape(-1))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return np.concatenate(blobs), offsets


def _decode_jpegs(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    first = cv2.imdecode(data[offsets[0]:offsets[1]], cv2.IMREAD_COLOR)
    out = np.empty((len(offsets) - 1, *first.shape), np.uint8)
    for k in range(len(offsets) - 1):
        bgr = first if k == 0 else cv2.imdecode(data[offsets[k]:offsets[k + 1]], cv2.IMREAD_COLOR)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out[k])
    return out


def save_assets(out_dir: str | Path, assets: FaceAssets) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, offsets = _encode_jpegs(assets.frames)
    np.savez(out_dir / "frames.npz", jpeg=data, offsets=offsets, affine=assets.frame_affine.astype(np.float32))
    np.savez_compressed(out_dir / "patches.npz", mouth=assets.mouth,
                        mouth_alpha=np.round(assets.mouth_alpha * 255).astype(np.uint8), eyes=assets.eyes,
                        eyes_alpha=np.round(assets.eyes_alpha * 255).astype(np.uint8))
    np.savez_compressed(out_dir / "mask.npz", mask=assets.person_mask.astype(np.uint8))
    info = asdict(assets.info)
    info["version"] = ASSETS_VERSION
    # Written last: its presence means the folder is complete.
    (out_dir / "assets.json").write_text(json.dumps(info, indent=2, default=float))


def assets_current(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds complete assets of the current version (older ones still
    load and render, but retraining gives better mouths and motion)."""
    path = Path(out_dir) / "assets.json"
    try:
        return int(json.loads(path.read_text()).get("version", 1)) >= ASSETS_VERSION
    except (OSError, ValueError):
        return False


def load_assets(out_dir: str | Path, *, legacy: Callable[[Path, AssetsInfo], FaceAssets] | None = None) -> FaceAssets:
    """Read a face's assets into memory. A version 1 folder is read by ``legacy`` (it takes the
    training code to bring one up to date: ``faces.training.load_assets`` passes it)."""
    out_dir = Path(out_dir)
    raw = json.loads((out_dir / "assets.json").read_text())
    known = {f.name for f in fields(AssetsInfo)}
    raw = {k: v for k, v in raw.items() if k in known}
    for key in ("mouth_roi", "eye_roi", "face_box", "mouth_center"):
        raw[key] = tuple(raw[key])
    version = int(raw.get("version", 1))
    info = AssetsInfo(**raw)
    if version < 2:
        if legacy is None:
            raise ValueError(f"{out_dir} holds version 1 face assets: read them with faces.training.load_assets")
        return legacy(out_dir, info)
    frames_npz = np.load(out_dir / "frames.npz")
    frames = _decode_jpegs(frames_npz["jpeg"], frames_npz["offsets"])
    patches = np.load(out_dir / "patches.npz")
    mask = np.load(out_dir / "mask.npz")["mask"]
    return FaceAssets(
        info=info, frames=frames, mouth=patches["mouth"],
        mouth_alpha=patches["mouth_alpha"].astype(np.float32) / 255, eyes=patches["eyes"],
        eyes_alpha=patches["eyes_alpha"].astype(np.float32) / 255, person_mask=mask,
        frame_affine=frames_npz["affine"].astype(np.float32),
    )
