"""The realtime face renderer (no Django): a trained face's assets in, one frame per tick of
the session clock out.

- Listening: the idle loop (a video face's real listening frames, or a photo with subtle head
  motion baked in), with blinks at random intervals of a few seconds.
- Speaking: the mouth follows each phrase's trajectory (``faces.mouth``: the TTS phoneme timings
  as openness and lip shape, gated by the audio's loudness, or the audio energy when an engine
  gives no timings); this module composes the matching mouth patch onto the idle frame.

Timing contract (one clock for audio and video):

- ``next_frame(t_ms)`` is the clock. The frame returned for ``t_ms`` is on screen from
  ``t_ms`` to the next tick; it shows the mouth for the audio played in that interval
  (sampled at its middle, ``t_ms + frame_ms / 2``).
- ``push_audio(chunk)`` queues a phrase. When nothing is playing it starts on the next frame
  (its first sample plays at that frame's ``t_ms``); otherwise it follows the queued speech
  without a gap. The transport calls it when the phrase's first sample goes out, so both
  readings agree.
- ``played_ms()`` is the pushed speech consumed so far: every phrase that has ended, plus
  the current one up to the end of the frame on screen (``t_ms + frame_ms − start``).
- ``clear()`` (an interruption) drops queued speech (``played_ms`` keeps what was shown) and
  eases the mouth back to rest within about five frames.
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from conversations.realtime.engines.base import FaceRenderer, TTSChunk
from faces.assets import FaceAssets, load_assets
from faces.mouth import Speech, speech_from_chunk

GREEN = (0, 255, 155)


@dataclass
class _Placement:
    """Where a canonical patch lands in one idle frame."""

    x: int
    y: int
    w: int
    h: int
    matrix: np.ndarray | None  # patch → box; None: an exact whole-pixel shift (no warp)
    alpha: np.ndarray  # (h, w) float32, the patch's alpha in the box
    px: int = 0  # with no matrix: where the box starts inside the patch
    py: int = 0


def _placements(affines: np.ndarray, roi: tuple[int, int, int, int], alpha: np.ndarray, size: int) -> list[_Placement]:
    x0, y0, x1, y1 = roi
    pw, ph = x1 - x0, y1 - y0
    corners = np.array([[0, 0, 1], [pw, 0, 1], [0, ph, 1], [pw, ph, 1]], np.float64)
    out = []
    for a in affines:
        m = np.asarray(a, np.float64) @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
        if np.allclose(m[:, :2], np.eye(2), atol=1e-6) and np.allclose(m[:, 2], np.round(m[:, 2]), atol=1e-6):
            bx, by = int(round(m[0, 2])), int(round(m[1, 2]))
            cx0, cy0 = max(0, bx), max(0, by)
            cx1, cy1 = min(size, bx + pw), min(size, by + ph)
            al = alpha[cy0 - by:cy1 - by, cx0 - bx:cx1 - bx]
            out.append(_Placement(cx0, cy0, cx1 - cx0, cy1 - cy0, None, np.ascontiguousarray(al), cx0 - bx, cy0 - by))
            continue
        pts = corners @ m.T
        bx0, by0 = np.floor(pts.min(axis=0)).astype(int)
        bx1, by1 = np.ceil(pts.max(axis=0)).astype(int)
        bx0, by0 = max(0, bx0), max(0, by0)
        bx1, by1 = min(size, bx1), min(size, by1)
        rel = m.copy()
        rel[:, 2] -= (bx0, by0)
        rel = rel.astype(np.float32)
        w, h = int(bx1 - bx0), int(by1 - by0)
        al = cv2.warpAffine(alpha, rel, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out.append(_Placement(int(bx0), int(by0), w, h, rel, al))
    return out


class _Prepared:
    """Per-face, per-size data every session shares (made once, cached on the assets)."""

    def __init__(self, assets: FaceAssets, size: int) -> None:
        info = assets.info
        s = size / info.size
        if s != 1.0:
            frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in assets.frames])
            masks = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) for m in assets.person_mask])
            scale = np.diag([s, s, 1.0])
            affines = np.stack([(scale @ np.vstack([a, [0, 0, 1]]) @ np.linalg.inv(scale))[:2] for a in assets.frame_affine])
            mouth = np.stack([[cv2.resize(p, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) for p in row] for row in assets.mouth])
            eyes = np.stack([cv2.resize(p, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) for p in assets.eyes])
            mouth_alpha = cv2.resize(assets.mouth_alpha, mouth.shape[3:1:-1])
            eyes_alpha = cv2.resize(assets.eyes_alpha, eyes.shape[2:0:-1])
            mroi = tuple(int(round(v * s)) for v in info.mouth_roi[:2])
            eroi = tuple(int(round(v * s)) for v in info.eye_roi[:2])
            mroi = (*mroi, mroi[0] + mouth.shape[3], mroi[1] + mouth.shape[2])
            eroi = (*eroi, eroi[0] + eyes.shape[2], eroi[1] + eyes.shape[1])
        else:
            frames, masks, affines = assets.frames, assets.person_mask, assets.frame_affine
            mouth, eyes, mouth_alpha, eyes_alpha = assets.mouth, assets.eyes, assets.mouth_alpha, assets.eyes_alpha
            mroi, eroi = info.mouth_roi, info.eye_roi
        self.size = size
        self.frames = frames
        self.masks = masks
        self.mouth = mouth
        self.eyes = eyes
        self.open_levels = np.asarray(info.open_levels, np.float32)
        self.blink_closures = np.asarray(info.blink_closures, np.float32)
        self.mouth_at = _placements(affines, mroi, mouth_alpha.astype(np.float32), size)
        self.eyes_at = _placements(affines, eroi, eyes_alpha.astype(np.float32), size)
        self._green: np.ndarray | None = None

    def green_frames(self) -> np.ndarray:
        if self._green is None:
            green = np.empty_like(self.frames)
            bg = np.empty(self.frames.shape[1:], np.uint8)
            bg[:] = GREEN
            for k, f in enumerate(self.frames):
                m = self.masks[k % len(self.masks)].astype(np.float32) / 255
                green[k] = cv2.blendLinear(f, bg, m, 1 - m)
            self._green = green
        return self._green


def _prepared(assets: FaceAssets, size: int) -> _Prepared:
    key = ("prepared", size)
    prep = assets._cache.get(key)
    if prep is None:
        prep = assets._cache[key] = _Prepared(assets, size)
    return prep


class FaceRendererEngine(FaceRenderer):
    """One session's face: see the module docstring for the timing contract."""

    def __init__(self, assets: FaceAssets, *, fps: int = 25, size: int | None = None, greenscreen: bool = False,
                 seed: int = 7) -> None:
        self.assets = assets
        self.fps = int(fps)
        self.frame_ms = 1000.0 / self.fps
        self.width = self.height = int(size or assets.info.size)
        self.greenscreen = greenscreen
        self._prep = _prepared(assets, self.width)
        self._frames = self._prep.green_frames() if greenscreen else self._prep.frames
        self._asset_frame_ms = 1000.0 / max(1, assets.info.fps)
        self._queue: deque[Speech] = deque()
        self._end_ms: float | None = None  # where the scheduled speech ends on the clock
        self._played_ms = 0.0  # finished phrases
        self._last_t: float | None = None
        self._open = 0.0
        self._shape = np.array([1.0, 0.0, 0.0], np.float32)
        self._visible = 0.0  # how much of the mouth overlay shows (eases out after speech)
        self._rng = random.Random(seed)
        self._next_blink_ms: float | None = None
        self._blink_start: float | None = None

    # ------------------------------------------------------------------ FaceRenderer
    def push_audio(self, chunk: TTSChunk) -> None:
        duration = chunk.duration_ms
        if duration <= 0:
            return
        speech = speech_from_chunk(chunk)
        playing = self._end_ms is not None and (self._last_t is None or self._end_ms > self._last_t + self.frame_ms / 2)
        if playing:
            speech.start_ms = self._end_ms
            self._end_ms += duration
        else:
            self._end_ms = None  # starts on the next frame
        self._queue.append(speech)

    def clear(self) -> None:
        if self._queue:
            head = self._queue[0]
            if head.start_ms is not None and self._last_t is not None:
                self._played_ms += min(head.duration_ms, max(0.0, self._last_t + self.frame_ms - head.start_ms))
        self._queue.clear()
        self._end_ms = None

    def played_ms(self) -> float:
        total = self._played_ms
        if self._queue and self._last_t is not None:
            head = self._queue[0]
            if head.start_ms is not None:
                total += min(head.duration_ms, max(0.0, self._last_t + self.frame_ms - head.start_ms))
        return total

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    def next_frame(self, t_ms: float) -> np.ndarray:
        self._advance(t_ms)
        return self._compose(t_ms)

    # ------------------------------------------------------------------ timeline
    def _advance(self, t_ms: float) -> None:
        self._last_t = t_ms
        # Drop phrases that ended before this frame.
        while self._queue and self._queue[0].start_ms is not None and \
                self._queue[0].start_ms + self._queue[0].duration_ms <= t_ms:
            self._played_ms += self._queue.popleft().duration_ms
        if self._queue and self._queue[0].start_ms is None:
            # Speech starts on this frame; anything queued behind it follows back to back.
            start = t_ms
            for s in self._queue:
                if s.start_ms is None:
                    s.start_ms = start
                start = s.start_ms + s.duration_ms
            self._end_ms = start
        if not self._queue:
            self._end_ms = None
        mid = t_ms + self.frame_ms / 2
        target = None
        for s in self._queue:
            if s.start_ms is not None and s.start_ms <= mid < s.start_ms + s.duration_ms:
                target = s.at(mid - s.start_ms)
                break
        if target is None and self._queue:
            target = (0.0, np.array([1.0, 0.0, 0.0], np.float32))  # between phrases: at rest, overlay kept
        if target is not None:
            self._open, self._shape = target
            self._visible = 1.0
        else:
            # Not speaking (ended or cleared): ease the mouth shut, then fade the overlay out so
            # the idle loop's own mouth takes over.
            self._open *= 0.45
            self._shape = self._shape * 0.5 + np.array([0.5, 0.0, 0.0], np.float32)
            if self._open < 0.04:
                self._open = 0.0
                self._visible = max(0.0, self._visible - 0.34)

    def _blink(self, t_ms: float) -> float:
        """Eyelid closure now (0 open .. 1 shut): a blink every 2.5–6 s, ~160 ms long."""
        if self._next_blink_ms is None:
            self._next_blink_ms = t_ms + self._rng.uniform(1200, 3500)
        if self._blink_start is None and t_ms >= self._next_blink_ms:
            self._blink_start = t_ms
        if self._blink_start is None:
            return 0.0
        k = int((t_ms - self._blink_start) // self.frame_ms)
        profile = (0.7, 1.0, 0.7, 0.35)
        if k >= len(profile) or k < 0:
            self._blink_start = None
            self._next_blink_ms = t_ms + self._rng.uniform(2500, 6000)
            return 0.0
        return profile[k]

    # ------------------------------------------------------------------ drawing
    def _compose(self, t_ms: float) -> np.ndarray:
        p = self._prep
        index = int(t_ms // self._asset_frame_ms) % len(self._frames)
        frame = self._frames[index].copy()
        closure = self._blink(t_ms)
        if closure > 0:
            level = int(np.argmin(np.abs(p.blink_closures - closure)))
            self._paste(frame, index, p.eyes[level], p.eyes_at[index], 1.0)
        if self._visible > 0:
            self._paste(frame, index, self._mouth_patch(), p.mouth_at[index], self._visible)
        return frame

    def _mouth_patch(self) -> np.ndarray:
        p = self._prep
        levels = p.open_levels
        pos = float(np.interp(self._open, levels, np.arange(len(levels))))
        lo = int(pos)
        hi = min(lo + 1, len(levels) - 1)
        frac = pos - lo
        order = np.argsort(-self._shape)
        s1, s2 = int(order[0]), int(order[1])
        w = self._shape[[s1, s2]]
        w2 = float(w[1] / max(w.sum(), 1e-6))
        if frac < 0.08 or hi == lo:
            patch = p.mouth[s1, lo]
        elif frac > 0.92:
            patch = p.mouth[s1, hi]
        else:
            patch = cv2.addWeighted(p.mouth[s1, lo], 1 - frac, p.mouth[s1, hi], frac, 0)
        if w2 > 0.2:
            patch = cv2.addWeighted(patch, 1 - w2, p.mouth[s2, int(round(pos))], w2, 0)
        return patch

    def _paste(self, frame: np.ndarray, index: int, patch: np.ndarray, at: _Placement, strength: float) -> None:
        if at.w <= 0 or at.h <= 0:
            return
        if at.matrix is None:
            warped = patch[at.py:at.py + at.h, at.px:at.px + at.w]
        else:
            warped = cv2.warpAffine(patch, at.matrix, (at.w, at.h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        alpha = at.alpha if strength >= 1.0 else at.alpha * np.float32(strength)
        region = frame[at.y:at.y + at.h, at.x:at.x + at.w]
        out = cv2.blendLinear(np.ascontiguousarray(warped), np.ascontiguousarray(region), alpha, 1 - alpha)
        if self.greenscreen:
            m = self._prep.masks[index % len(self._prep.masks)][at.y:at.y + at.h, at.x:at.x + at.w]
            m = m.astype(np.float32) * np.float32(1 / 255)
            bg = np.empty_like(out)
            bg[:] = GREEN
            out = cv2.blendLinear(out, bg, m, 1 - m)
        region[:] = out


_CACHE: dict[str, FaceAssets] = {}


def create_renderer(assets_dir: str | Path, *, greenscreen: bool = False, fps: int = 25,
                    size: int | None = None, load: Callable[[Path], FaceAssets] = load_assets) -> FaceRendererEngine:
    """A renderer for one session; the face's assets are loaded once per process and shared.
    ``load`` reads the folder: the format's reader by default; a caller that may meet version 1
    folders passes ``faces.training.load_assets`` (the renderer does not import training)."""
    path = Path(assets_dir).resolve()
    # Keyed by the folder and its assets.json's time: a retrained face is loaded afresh.
    key = f"{path}:{(path / 'assets.json').stat().st_mtime_ns}"
    assets = _CACHE.get(key)
    if assets is None:
        for old in [k for k in _CACHE if k.rsplit(":", 1)[0] == str(path)]:
            del _CACHE[old]
        assets = _CACHE[key] = load(path)
    return FaceRendererEngine(assets, greenscreen=greenscreen, fps=fps, size=size)
