"""Mouth and eyelid appearance sets synthesised from one face image in the canonical pose.

Photo faces get all their mouth shapes here; video faces get their eyelids here (their mouths
are real frames, see ``faces.training.video``).

The mouth opens by a *split warp*: the image is cut along the line where the lips meet (for
a smile that shows teeth, just above the lower lip, so the teeth stay with the upper jaw); the
part above moves up a little, the part below (lower lip, chin, jaw) moves down along smooth
fields that fade out over the cheeks and the neck; the gap that opens between them is painted
as a mouth interior (shaded, with a teeth hint when the photo shows none). Column by column
the warp is monotonic, so nothing folds or tears, unlike a triangle mesh whose thin triangles
shatter at the lips. Eyelids close the same way: the lid skin is stretched down over the eye.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faces.assets import BLINK_CLOSURES, OPEN_LEVELS, SHAPES
from faces.training import landmarks as L

INTERIOR = np.array([48, 16, 19], np.float32)
TONGUE = np.array([150, 64, 70], np.float32)
TEETH = np.array([226, 220, 208], np.float32)
#: widest opening of the lips (level 1.0), in inter-ocular distances
MAX_OPEN_IOD = 0.30


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def feather(shape: tuple[int, int], margin: float = 0.18) -> np.ndarray:
    """An alpha that is 1 in an ellipse-ish middle of a region and falls smoothly to 0 at its
    border (so a patch's corners never show)."""
    h, w = shape
    yy = (np.arange(h) + 0.5) / h * 2 - 1
    xx = (np.arange(w) + 0.5) / w * 2 - 1
    # A superellipse: close to the box, with rounded corners.
    r = (np.abs(yy)[:, None] ** 4 + np.abs(xx)[None, :] ** 4) ** 0.25
    return _smoothstep((1 - r) / margin).astype(np.float32)


@dataclass
class MouthGeometry:
    roi: tuple[int, int, int, int]
    iod: float
    cx: float
    half_inner: float  # half the distance between the inner lip corners
    mouth_w: float
    face_w: float
    nose_y: float
    seam: np.ndarray  # y of the split line per ROI column
    lip_below: np.ndarray  # thickness of the lower lip per column (seam → lower outer lip)
    chin: np.ndarray  # y of the jaw contour per ROI column (NaN beside the face)
    region: np.ndarray  # (h, w) float: where the jaw may move (lower face and under the chin)
    teeth_visible: bool
    max_open: float


def mouth_geometry(img: np.ndarray, pts: np.ndarray) -> MouthGeometry:
    size = img.shape[0]
    iod = L.interocular(pts)
    jaw = pts[L.JAW_CURVE]
    corners_y = float(pts[[61, 291]][:, 1].mean())
    below = jaw[jaw[:, 1] > corners_y - 0.1 * iod]
    x0 = int(max(0, min(below[:, 0].min(), pts[61][0] - 0.3 * iod) - 0.12 * iod))
    x1 = int(min(size, max(below[:, 0].max(), pts[291][0] + 0.3 * iod) + 0.12 * iod))
    y0 = int(max(0, pts[2][1] - 0.12 * iod))
    y1 = int(min(size, pts[152][1] + 0.75 * iod))
    xs = np.arange(x0, x1, dtype=np.float64)

    up = L.curve_y(pts, L.UPPER_INNER_CURVE, xs)
    lo = L.curve_y(pts, L.LOWER_INNER_CURVE, xs)
    gap0 = np.nan_to_num(lo - up, nan=0.0).clip(0)
    # Does the photo show teeth between the lips? Then they belong to the upper jaw.
    opening = np.zeros(img.shape[:2], np.uint8)
    inner = np.vstack([pts[L.UPPER_INNER_CURVE], pts[L.LOWER_INNER_CURVE][::-1]])
    cv2.fillPoly(opening, [np.round(inner).astype(np.int32)], 1)
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[opening.astype(bool)]
    teeth = bool(gap0.max() > 0.05 * iod and lum.size > 20 and np.median(lum) > 140)
    split = np.where(np.isnan(up), np.nan, lo - 0.12 * gap0 if teeth else (up + lo) / 2)
    # Beyond the inner corners the split runs to the outer corners, then straight on.
    xl, xr = pts[61], pts[291]
    il, ir = pts[78], pts[308]
    anchors_x = [xs[0] - 1, xl[0], il[0], ir[0], xr[0], xs[-1] + 1]
    anchors_y = [xl[1], xl[1], il[1], ir[1], xr[1], xr[1]]
    outside = np.interp(xs, anchors_x, anchors_y)
    seam = np.where(np.isnan(split), outside, split)
    lower_outer = L.curve_y(pts, L.LOWER_OUTER_CURVE, xs)
    lip_below = np.nan_to_num(lower_outer - seam, nan=0.0).clip(0.08 * iod, None)
    chin = L.curve_y(pts, L.JAW_CURVE[4:17], xs)

    # Where the jaw may move: the lower face, and the neck just under the chin (the chin slides
    # down over it), softly; never the background beside the jaw.
    region = np.zeros(img.shape[:2], np.float32)
    face_poly = np.vstack([jaw, pts[[10]]])
    cv2.fillPoly(region, [np.round(cv2.convexHull(face_poly.astype(np.float32))).astype(np.int32).reshape(-1, 2)], 1.0)
    chin_pt = pts[152]
    neck_w = 0.5 * float(np.linalg.norm(pts[172] - pts[397]))
    cv2.ellipse(region, (int(chin_pt[0]), int(chin_pt[1])), (int(neck_w), int(0.45 * iod)), 0, 0, 180, 1.0, -1)
    region = cv2.GaussianBlur(region, (0, 0), 0.06 * iod)[y0:y1, x0:x1]

    return MouthGeometry(
        roi=(x0, y0, x1, y1), iod=iod, cx=float((pts[61][0] + pts[291][0]) / 2),
        half_inner=float(np.linalg.norm(pts[308] - pts[78]) / 2), mouth_w=float(np.linalg.norm(pts[291] - pts[61])),
        face_w=float(np.linalg.norm(pts[454] - pts[234])), nose_y=float(pts[2][1]), seam=seam, lip_below=lip_below,
        chin=chin, region=region, teeth_visible=teeth, max_open=MAX_OPEN_IOD * iod,
    )


def _roi_taper(h: int, w: int, margin: float = 0.12) -> np.ndarray:
    """1 inside, 0 at the ROI border: the warp leaves the border where it was."""
    yy = np.minimum(np.arange(h), np.arange(h)[::-1]) / max(1.0, margin * h)
    xx = np.minimum(np.arange(w), np.arange(w)[::-1]) / max(1.0, margin * w)
    return _smoothstep(np.minimum.outer(yy, xx)).astype(np.float32)


def mouth_variant(img: np.ndarray, g: MouthGeometry, openness: float, shape: str) -> np.ndarray:
    """The canonical image's mouth ROI with the lips opened by ``openness`` (0..1) in a
    ``shape`` (neutral, wide or round)."""
    x0, y0, x1, y1 = g.roi
    h, w = y1 - y0, x1 - x0
    xs = np.arange(x0, x1, dtype=np.float64)
    d = float(openness) * g.max_open
    hw = g.half_inner * {"round": 0.72, "wide": 1.08}.get(shape, 1.0)
    profile = np.clip(1 - ((xs - g.cx) / max(hw, 1.0)) ** 2, 0, 1) ** (0.5 if shape == "round" else 0.75)
    # The lips part (the lower lip more than the upper); the jaw drops about half as much as
    # the lips open, the chin most, the jaw's sides less.
    d_low = 0.8 * d * profile
    d_up = 0.2 * d * profile
    d_jaw = 0.55 * d * np.exp(-0.5 * ((xs - g.cx) / (0.42 * g.face_w)) ** 2)
    taper = _roi_taper(h, w)
    weight = g.region * taper

    ys_f = np.arange(y0, y1, 0.5)
    rows = np.arange(y0, y1, dtype=np.float64)
    map_y = np.empty((h, w), np.float32)
    gap_a = np.zeros((h, w), np.float32)
    gap_u = np.zeros((h, w), np.float32)  # 0 at the upper lip .. 1 at the lower lip
    fall_sigma = 0.5 * g.iod
    for j in range(w):
        s = g.seam[j]
        wcol = np.interp(ys_f, rows, weight[:, j])
        # Lower branch: lip → jaw, then fading out down the neck.
        t = _smoothstep((ys_f - s) / max(g.lip_below[j], 1.0))
        low = d_low[j] * (1 - t) + d_jaw[j] * t
        chin = g.chin[j]
        if not np.isnan(chin):
            past = np.clip(ys_f - chin, 0, None)
            low = low * np.exp(-0.5 * (past / fall_sigma) ** 2)
        low = low * wcol
        # Upper branch: the upper lip lifts, fading to nothing at the nose.
        tu = _smoothstep((ys_f - g.nose_y) / max(s - g.nose_y, 1.0))
        upd = -d_up[j] * tu * wcol
        sel_l = ys_f >= s
        sel_u = ~sel_l
        src_l, out_l = ys_f[sel_l], np.maximum.accumulate(ys_f[sel_l] + low[sel_l])
        src_u, out_u = ys_f[sel_u], np.maximum.accumulate(ys_f[sel_u] + upd[sel_u])
        # Where the lips' edges now are: the split line moved by each branch's displacement.
        w_s = float(np.interp(s, rows, weight[:, j]))
        top = s - d_up[j] * w_s
        bot = s + d_low[j] * w_s
        mid = (top + bot) / 2
        col = np.where(rows < mid,
                       np.interp(rows, out_u, src_u) if len(out_u) else rows,
                       np.interp(rows, out_l, src_l) if len(out_l) else rows)
        map_y[:, j] = col
        if bot - top > 0.3:
            gap_a[:, j] = np.clip(np.minimum(rows - top, bot - rows) + 0.5, 0, 1)
            gap_u[:, j] = np.clip((rows - top) / (bot - top), 0, 1)
    map_x = np.broadcast_to(xs.astype(np.float32)[None, :], (h, w)).copy()
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    if gap_a.max() > 0:
        # As soft as the photo's own edges.
        gap_a = cv2.GaussianBlur(gap_a, (0, 0), 0.7)
        out = _paint_interior(out, gap_a, gap_u, g, profile, d, shape)

    # Lip shape: corners drawn in (round) or out (wide), near the mouth only.
    k = {"round": -0.2, "wide": 0.09}.get(shape, 0.0) * min(1.0, 0.35 + openness)
    if k:
        yy = np.arange(h, dtype=np.float32)[:, None] + y0
        xx = xs.astype(np.float32)[None, :]
        sc = float(np.interp(g.cx, xs, g.seam))
        sy = 0.35 * g.mouth_w + 0.5 * d
        src_x = np.broadcast_to(xx, (h, w)).copy()
        for _ in range(3):  # invert x_out = x + k (x - cx) G(x, y) by fixed-point iteration
            gx = np.exp(-0.5 * (((src_x - g.cx) / (0.8 * g.mouth_w)) ** 2 + ((yy - sc - 0.2 * d) / sy) ** 2)) * taper
            src_x = xx - k * (src_x - g.cx) * gx
        out = cv2.remap(out, (src_x - x0).astype(np.float32), np.broadcast_to(yy - y0, (h, w)).astype(np.float32),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(out, 0, 255).astype(np.uint8)


def _paint_interior(out: np.ndarray, gap_a: np.ndarray, gap_u: np.ndarray, g: MouthGeometry,
                    profile: np.ndarray, d: float, shape: str) -> np.ndarray:
    """Fill the opened gap: a dark throat, the tongue's warmer floor, darker corners, a hint of
    upper teeth (when the photo shows none) and of lower teeth for wide openings."""
    h, w = gap_a.shape
    x0 = g.roi[0]
    xs = np.arange(w, dtype=np.float32)[None, :] + x0
    rows = np.arange(h, dtype=np.float32)[:, None]
    across = np.sqrt(profile).astype(np.float32)[None, :]  # 1 mid-mouth .. 0 at the corners
    wide = min(1.0, d / (0.12 * g.iod))
    floor = _smoothstep((gap_u - 0.5) / 0.5) * wide * across
    interior = INTERIOR[None, None, :] * (1 - floor[..., None]) + TONGUE[None, None, :] * floor[..., None]
    # Light falls off into the mouth: darkest just under the upper lip and in the corners.
    light = (0.55 + 0.45 * across) * (0.55 + 0.45 * _smoothstep(gap_u / 0.6))
    interior = interior * light[..., None]
    gap_h = np.zeros(w, np.float32)
    top = np.zeros(w, np.float32)
    for j in range(w):
        col = np.nonzero(gap_a[:, j] > 0.5)[0]
        if len(col):
            top[j], gap_h[j] = col[0], col[-1] - col[0] + 1
    bottom = top + gap_h
    th = np.minimum(0.4 * gap_h, 0.075 * g.iod) * across[0]
    if not g.teeth_visible and shape != "round":
        # Upper teeth just under the upper lip, with a soft lower edge.
        depth = (rows - top[None, :]) / np.maximum(th[None, :], 1.0)
        a = np.clip((1 - depth) * 2.5, 0, 1) * (gap_h[None, :] > 2) * np.clip(across * 1.6, 0, 1)
        tone = (0.7 + 0.3 * np.clip(1 - depth, 0, 1)) * (0.65 + 0.35 * across)
        interior = interior * (1 - a[..., None]) + (TEETH * tone[..., None]) * a[..., None]
    if d > 0.1 * g.iod:
        # The edge of the lower teeth just above the lower lip, in the middle only.
        lh = 0.45 * np.minimum(0.4 * gap_h, 0.075 * g.iod)
        depth = (bottom[None, :] - rows) / np.maximum(lh[None, :], 1.0)
        a = np.clip((1 - depth) * 2.0, 0, 1) * np.clip((across - 0.65) * 3.0, 0, 1) * min(1.0, (d - 0.1 * g.iod) / (0.08 * g.iod))
        a *= 0.7
        interior = interior * (1 - a[..., None]) + (TEETH * 0.72) * a[..., None]
    a = gap_a[..., None]
    return out * (1 - a) + interior * a


def build_mouth_set(img: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple, MouthGeometry]:
    """All mouth patches (shape × openness level), their alpha and ROI, from a canonical image."""
    g = mouth_geometry(img, pts)
    x0, y0, x1, y1 = g.roi
    patches = np.zeros((len(SHAPES), OPEN_LEVELS, y1 - y0, x1 - x0, 3), np.uint8)
    for s, shape in enumerate(SHAPES):
        for k, o in enumerate(np.linspace(0, 1, OPEN_LEVELS)):
            patches[s, k] = img[y0:y1, x0:x1] if o == 0 and shape == "neutral" else mouth_variant(img, g, o, shape)
    alpha = feather((y1 - y0, x1 - x0), 0.2) * changed_mask(patches.reshape(-1, *patches.shape[2:]), img[y0:y1, x0:x1], g.iod)
    return patches, alpha, g.roi, g


def changed_mask(variants: np.ndarray, base: np.ndarray, iod: float) -> np.ndarray:
    """Where any variant differs from the base, grown and softened: pasting only there keeps
    the background and the idle frame's own pixels everywhere the face did not change."""
    diff = np.zeros(base.shape[:2], np.float32)
    b = base.astype(np.int16)
    for v in variants:
        diff = np.maximum(diff, np.abs(v.astype(np.int16) - b).max(axis=2).astype(np.float32))
    mask = (diff > 6).astype(np.uint8)
    r = max(1, int(0.05 * iod))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.04 * iod) * 1.5, 0, 1)


def mouth_roi(pts: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The mouth ROI of a face in the canonical pose (as :func:`build_mouth_set` uses)."""
    return mouth_geometry(np.zeros((size, size, 3), np.uint8), pts).roi


def eye_roi(pts: np.ndarray, size: int) -> tuple[int, int, int, int]:
    ring = pts[L.LEFT_EYE_RING + L.RIGHT_EYE_RING]
    pad = 0.08 * float(ring[:, 0].max() - ring[:, 0].min())
    x0, y0 = np.maximum(0, ring.min(axis=0) - pad).astype(int)
    x1, y1 = np.minimum(size, ring.max(axis=0) + pad).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def eyelid_variant(img: np.ndarray, pts: np.ndarray, roi: tuple[int, int, int, int], closure: float) -> np.ndarray:
    """The eye ROI with both upper lids lowered by ``closure`` (0 open .. 1 shut): the lid and
    the skin above it are stretched down over the eye, so the lash line lands on the lower lid."""
    x0, y0, x1, y1 = roi
    h, w = y1 - y0, x1 - x0
    xs = np.arange(x0, x1, dtype=np.float64)
    rows = np.arange(y0, y1, dtype=np.float64)
    map_y = np.broadcast_to(rows[:, None], (h, w)).astype(np.float64).copy()
    for upper, lower in ((L.LEFT_UPPER_LID, L.LEFT_LOWER_LID), (L.RIGHT_UPPER_LID, L.RIGHT_LOWER_LID)):
        yu = L.curve_y(pts, upper, xs)
        yl = L.curve_y(pts, lower, xs)
        eye_w = float(np.ptp(pts[upper][:, 0]))
        lid = 0.3 * eye_w  # how much skin above the lid line is stretched
        for j in np.nonzero(~np.isnan(yu) & ~np.isnan(yl))[0]:
            height = max(0.0, yl[j] - yu[j])
            if height < 0.3:
                continue
            new = yu[j] + 0.97 * closure * height
            top = yu[j] - lid
            sel = (rows >= top) & (rows <= new)
            map_y[sel, j] = top + (rows[sel] - top) * (yu[j] - top) / max(new - top, 1e-3)
    map_x = np.broadcast_to(xs[None, :], (h, w)).astype(np.float32)
    return cv2.remap(img, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def build_eye_set(img: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    roi = eye_roi(pts, img.shape[0])
    x0, y0, x1, y1 = roi
    out = np.stack([eyelid_variant(img, pts, roi, c) for c in BLINK_CLOSURES])
    alpha = feather((y1 - y0, x1 - x0), 0.25) * changed_mask(out, img[y0:y1, x0:x1], L.interocular(pts))
    return out, alpha, roi


def person_mask(img: np.ndarray) -> np.ndarray:
    """Person vs background (MediaPipe selfie segmentation), smoothed; float32, 1 = person."""
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        result = seg.process(img)
    mask = result.segmentation_mask.astype(np.float32)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    return np.clip((mask - 0.35) / 0.3, 0, 1)
