"""A face from a training video (one continuous take of one person: part listening, part
speaking).

Pass 1 probes the file and reads the face mesh on every other frame: it rejects what cannot
work (the documented error codes), finds who is speaking when (audio energy, else mouth
motion), picks the reference pose and an idle loop whose ends match. Pass 2 decodes again and
keeps only what the assets need: the idle loop and one speaking frame per mouth opening,
each stabilised onto the reference pose; mouth patches are colour-matched to the idle face.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from faces.assets import OPEN_LEVELS, SHAPES, SIZE, AssetsInfo, FaceAssets, save_assets
from faces.training import landmarks as L
from faces.training.errors import TrainingError
from faces.training.patches import build_eye_set, feather, mouth_geometry, person_mask
from faces.training.previews import write_previews
from faces.training.probe import CODECS, MAX_S, MIN_FPS, MIN_S, VideoInfo, check_video, probe  # noqa: F401

logger = logging.getLogger(__name__)

Progress = Callable[[int], None] | None
ANALYSE_EVERY = 2
ANALYSE_WIDTH = 640
LOOP_MIN, LOOP_MAX = 50, 100  # idle loop length in frames (2–4 s at 25 fps)
#: where a mouth shape sits on the mouth-width scale (standard deviations from the median)
SHAPE_WIDTH = {"neutral": 0.0, "wide": 1.0, "round": -1.3}


def _check(info: VideoInfo) -> None:
    check_video(info)


def _frames(path: str | Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            yield i, frame


def _audio_energy(path: str | Path, fps: float, n_frames: int) -> np.ndarray | None:
    """RMS of the soundtrack per video frame (None without audio)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError:
        return None
    if not chunks:
        return None
    pcm = np.concatenate(chunks).astype(np.float32) / 32768
    hop = 16000 / fps
    rms = np.array([np.sqrt(np.mean(pcm[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(n_frames)])
    return rms


@dataclass
class _Analysis:
    index: int
    faces: int
    measure: L.FaceMeasure | None
    brightness: float
    thumb: np.ndarray | None = None  # the whole frame, tiny and grey: for comparing loop ends
    #: no mesh, but the full-range detector (checked on some such frames) saw a small face
    distant_face: bool | None = None


def _analyse(path: str | Path, info: VideoInfo, report) -> list[_Analysis]:
    scale = min(1.0, ANALYSE_WIDTH / max(1, info.width))
    out: list[_Analysis] = []
    total = max(1, info.frames)
    L.reset_tracking()
    for i, frame in _frames(path):
        if i % ANALYSE_EVERY:
            continue
        rgb = frame.to_ndarray(format="rgb24")
        if scale < 1.0:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = L.measure_faces(rgb, static=False)
        m = faces[0] if faces else None
        distant = None
        if m is None and (i // ANALYSE_EVERY) % 5 == 0:
            # The mesh only finds faces of a fair size: is there a face too far away?
            frame_rgb = frame.to_ndarray(format="rgb24") if scale < 1.0 else rgb
            distant = any(b[4] > 0.6 for b in L.detect_faces(frame_rgb))
        bright = 0.0
        if m is not None:
            m.points /= scale
            m.width /= scale
            m.height /= scale
            x0, y0 = (m.points.min(axis=0) * scale).astype(int).clip(0)
            x1, y1 = (m.points.max(axis=0) * scale).astype(int)
            bright = float(rgb[y0:y1, x0:x1].mean()) if y1 > y0 and x1 > x0 else 0.0
        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (96, 72), interpolation=cv2.INTER_AREA)
        out.append(_Analysis(i, len(faces), m, bright, thumb.astype(np.float32), distant))
        if len(out) % 25 == 0:
            report(5 + int(45 * min(1.0, i / total)))
    return out


def _reject_bad_takes(rows: list[_Analysis], info: VideoInfo) -> list[_Analysis]:
    n = len(rows)
    with_face = [r for r in rows if r.measure is not None]
    if n == 0 or len(with_face) < 0.6 * n:
        checked = [r.distant_face for r in rows if r.distant_face is not None]
        if checked and sum(checked) >= 0.5 * len(checked):
            raise TrainingError("improper_distance", "the face is too far from the camera: sit closer (the face should "
                                                     "fill at least a quarter of the frame)")
        raise TrainingError("no_face_detected", "no face was found in most of the video: keep your face in the frame")
    two = sum(1 for r in rows if r.faces >= 2)
    if two > 0.15 * n:
        raise TrainingError("second_person_detected", "more than one person is in the video: record alone")
    yaw = np.median([abs(r.measure.yaw_deg) for r in with_face])
    if yaw > 30:
        raise TrainingError("face_turned_away", "the face is turned away from the camera: look into the lens")
    width = np.median([r.measure.width for r in with_face]) / info.width
    if width < 0.15:
        raise TrainingError("improper_distance", "the face is too small in the frame: sit closer (the face should fill "
                                                 "at least a quarter of the frame)")
    if width > 0.85:
        raise TrainingError("improper_distance", "the face is too close to the camera: move back so your head and "
                                                 "shoulders are in the frame")
    if np.median([r.brightness for r in with_face]) < 45:
        raise TrainingError("poor_lighting", "the face is too dark: add light in front of you")
    centers = np.array([r.measure.center for r in with_face])
    widths = np.array([r.measure.width for r in with_face])
    spread = float(np.percentile(np.linalg.norm(centers - np.median(centers, axis=0), axis=1) / widths, 90))
    if spread > 0.35:
        raise TrainingError("excessive_movement_detected", "the head moves too much: keep still, as in a video call")
    return with_face


def _stabiliser(reference_pts: np.ndarray):
    def transform(pts: np.ndarray) -> np.ndarray:
        m, _ = cv2.estimateAffinePartial2D(pts[L.STABLE].astype(np.float32), reference_pts[L.STABLE].astype(np.float32))
        return m if m is not None else np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    return transform


def _colour_match(patch: np.ndarray, target: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Match a patch's colour to the idle face where both show the same skin (the band where
    the patch fades in), once, at training time."""
    p = patch.astype(np.float32)
    t = target.astype(np.float32)
    for c in range(3):
        ps, ts = p[..., c][band], t[..., c][band]
        gain = float(np.clip(ts.std() / max(ps.std(), 1.0), 0.85, 1.15))
        p[..., c] = (p[..., c] - ps.mean()) * gain + ts.mean()
    return np.clip(p, 0, 255).astype(np.uint8)


def _speaking_mask(path: Path, info: VideoInfo, idx: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    energy = _audio_energy(path, info.fps, info.frames + 1)
    if energy is not None and energy.max() > 1e-3:
        e = energy[np.clip(idx, 0, len(energy) - 1)]
        return e > 0.25 * np.percentile(energy, 95)
    # No soundtrack: mouth movement over ~1 s windows tells speech from listening.
    win = max(3, int(info.fps / ANALYSE_EVERY))
    pad = np.pad(mouth, (win // 2, win // 2), mode="edge")
    std = np.array([pad[k:k + win].std() for k in range(len(mouth))])
    return std > max(0.008, np.percentile(std, 60))


def train_from_video(path: str | Path, out_dir: str | Path, *, progress: Progress = None,
                     consent: tuple[Callable[[np.ndarray], str], str] | None = None) -> AssetsInfo:
    """Train a face from a video of one person, part listening and part speaking.

    ``consent``: ``(transcribe, full_name)``; ``transcribe(audio)`` gets the first ~20 s as
    float32 mono 16 kHz and returns the text, which must hold the consent statement naming
    ``full_name`` (else ``consent_phrase_mismatch``). ``progress(n)`` gets 0..100."""
    report = progress or (lambda n: None)
    path = Path(path)
    report(1)
    info = probe(path)
    _check(info)
    report(3)
    if consent is not None:
        _check_consent(path, *consent)
    rows = _reject_bad_takes(_analyse(path, info, report), info)
    report(52)

    by_index = {r.index: r for r in rows}
    idx = np.array(sorted(by_index))
    mouth = np.array([by_index[i].measure.mouth_open for i in idx])
    eyes = np.array([by_index[i].measure.eye_open for i in idx])
    speaking = _speaking_mask(path, info, idx, mouth)
    # Hangover: a listening frame must be well away from speech.
    listen = ~np.convolve(speaking.astype(float), np.ones(9), mode="same").astype(bool)
    if listen.sum() < LOOP_MIN // ANALYSE_EVERY:
        raise TrainingError("video_duration", "the video has too little listening (silent, still) time: record about "
                                              "half a minute of quietly listening")
    if speaking.sum() < 10:
        raise TrainingError("video_duration", "the video has too little speaking: talk for about half a minute")

    # Reference pose: the most frontal listening frame with the mouth closed and eyes open.
    eye_ref = float(np.median(eyes[listen]))
    cand = [i for k, i in enumerate(idx) if listen[k] and eyes[k] > 0.8 * eye_ref]
    cand = cand or [i for k, i in enumerate(idx) if listen[k]]
    ref_i = min(cand, key=lambda i: abs(by_index[i].measure.yaw_deg) + 200 * by_index[i].measure.mouth_open)
    ref_m = by_index[ref_i].measure
    to_crop = L.canonical_transform(ref_m, SIZE, frame=(info.width, info.height))
    ref_pts = L.transform_points(ref_m.points, to_crop)
    stab = _stabiliser(ref_pts)
    transforms = {i: stab(by_index[i].measure.points) for i in idx}
    crop_pts = {i: L.transform_points(by_index[i].measure.points, transforms[i]) for i in idx}

    # Idle loop: a listening stretch whose last frame matches its first (stabilised landmarks),
    # with open eyes and a still mouth throughout (the renderer adds its own blinks).
    eye_of = dict(zip(idx, eyes))
    mouth_of = dict(zip(idx, mouth))
    best = None
    for run in _runs([i for k, i in enumerate(idx) if listen[k]], ANALYSE_EVERY):
        blink = np.array([eye_of[i] < 0.6 * eye_ref for i in run], float)
        moving = np.abs(np.diff([mouth_of[i] for i in run], prepend=mouth_of[run[0]]))
        cum_blink = np.concatenate([[0], np.cumsum(blink)])
        cum_move = np.concatenate([[0], np.cumsum(moving)])
        pos = {i: k for k, i in enumerate(run)}
        for a_pos, a in enumerate(run):
            for length in range(LOOP_MIN, LOOP_MAX + 1, ANALYSE_EVERY * 2):
                b = a + length
                if b > run[-1]:
                    break
                if b not in pos:
                    continue
                seam = float(np.abs(crop_pts[a] - crop_pts[b]).mean())
                span = slice(a_pos, pos[b] + 1)
                n = span.stop - span.start
                # Ends that match (the face's shape and the picture as a whole), no blink, a
                # still mouth; a slight preference for longer loops (less repetitive).
                cost = seam + 0.5 * float(np.abs(by_index[a].thumb - by_index[b].thumb).mean()) \
                    + 3.0 * float(cum_blink[span.stop] - cum_blink[span.start]) \
                    + 300.0 * float(cum_move[span.stop] - cum_move[span.start]) / n - 0.002 * length
                if best is None or cost < best[0]:
                    best = (cost, a, b)
    if best is None:
        raise TrainingError("video_duration", f"no still listening stretch of {LOOP_MIN / 25:.0f} s was found: listen "
                                              "quietly for a few seconds at a time")
    _, loop_a, loop_b = best
    report(60)

    # Mouth appearances: for each shape × opening level, the speaking frame that shows it best.
    speak_idx = [i for k, i in enumerate(idx) if speaking[k] and abs(by_index[i].measure.yaw_deg) < 20]
    if len(speak_idx) < 5:
        raise TrainingError("face_turned_away", "while speaking, the face was turned away: look at the camera")
    opens = np.array([by_index[i].measure.mouth_open for i in speak_idx])
    widths = np.array([np.linalg.norm(crop_pts[i][291] - crop_pts[i][61]) for i in speak_idx])
    lo_o, hi_o = np.percentile(opens, 2), np.percentile(opens, 98)
    o_n = (opens - lo_o) / max(hi_o - lo_o, 1e-6)
    w_z = (widths - np.median(widths)) / max(float(widths.std()), 1e-6)
    levels = np.linspace(0, 1, OPEN_LEVELS)
    choice: dict[tuple[int, int], int] = {}
    for s, shape in enumerate(SHAPES):
        for k, lv in enumerate(levels):
            cost = (o_n - lv) ** 2 + 0.04 * (w_z - SHAPE_WIDTH[shape]) ** 2
            choice[(s, k)] = speak_idx[int(np.argmin(cost))]

    fade = 6
    wanted = set(range(max(0, loop_a - fade), loop_b)) | set(choice.values()) | {ref_i}

    def smoothed(i: int) -> np.ndarray:
        # Landmarks jitter by a pixel or so: average the transforms of the neighbouring analysed
        # frames so the stabilised video does not shake.
        near = [transforms[j] for j in range(i - 6, i + 7) if j in transforms]
        if not near:
            near = [transforms[min(transforms, key=lambda j: abs(j - i))]]
        return np.mean(near, axis=0).astype(np.float32)

    crops: dict[int, np.ndarray] = {}
    last = max(wanted)
    for i, frame in _frames(path):
        if i > last:
            break
        if i not in wanted:
            continue
        m = smoothed(i)
        rgb = frame.to_ndarray(format="rgb24")
        crops[i] = cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if len(crops) % 20 == 0:
            report(60 + int(15 * len(crops) / len(wanted)))
    report(75)

    loop = np.stack([crops[i] for i in range(loop_a, loop_b)])
    # Cross-fade the loop's tail into the frames that really came just before its first frame,
    # so playing the last frame then the first is a natural step, not a jump.
    lead_in = [crops[i] for i in range(max(0, loop_a - fade), loop_a)]
    for k, frame in enumerate(lead_in):
        w = (k + 1) / (len(lead_in) + 1)
        pos = len(loop) - len(lead_in) + k
        loop[pos] = cv2.addWeighted(loop[pos], 1 - w, frame, w, 0)
    steps = [float(np.abs(loop[k + 1].astype(np.int16) - loop[k]).mean()) for k in range(len(loop) - 1)]
    seam = float(np.abs(loop[0].astype(np.int16) - loop[-1]).mean())

    base = crops[ref_i]
    base_faces = L.measure_faces(base)
    base_pts = base_faces[0].points if base_faces else ref_pts
    g = mouth_geometry(base, base_pts)
    x0, y0, x1, y1 = g.roi
    # Paste only over the lower face and the neck under the chin, never the background.
    alpha = feather((y1 - y0, x1 - x0), 0.2) * np.clip(g.region * 1.3, 0, 1)
    band = (alpha > 0.15) & (alpha < 0.7)
    target = base[y0:y1, x0:x1]
    mouth_set = np.zeros((len(SHAPES), OPEN_LEVELS, y1 - y0, x1 - x0, 3), np.uint8)
    for (s, k), i in choice.items():
        mouth_set[s, k] = target if (s, k) == (0, 0) else _colour_match(crops[i][y0:y1, x0:x1], target, band)
    report(80)
    eyes_set, eyes_alpha, eroi = build_eye_set(base, base_pts)
    masks = np.stack([np.round(person_mask(f) * 255).astype(np.uint8) for f in loop])
    report(88)
    fx, fy = base_pts[:, 0], base_pts[:, 1]
    assets = FaceAssets(
        info=AssetsInfo(
            kind="video", size=SIZE, idle_frames=len(loop), mouth_roi=g.roi, eye_roi=eroi,
            mouth_center=(float(base_pts[[13, 14]][:, 0].mean()), float(base_pts[[13, 14]][:, 1].mean())),
            face_box=(int(fx.min()), int(fy.min()), int(fx.max()), int(fy.max())), iod=L.interocular(base_pts),
            loop_seam=seam, loop_step=float(np.median(steps)) if steps else 0.0,
            source={"duration_s": round(info.duration_s, 2), "fps": round(info.fps, 2), "width": info.width,
                    "height": info.height, "codec": info.codec, "loop_start": int(loop_a), "loop_end": int(loop_b),
                    "speaking_frames": int(speaking.sum() * ANALYSE_EVERY)},
        ),
        frames=loop, mouth=mouth_set, mouth_alpha=alpha.astype(np.float32), eyes=eyes_set, eyes_alpha=eyes_alpha,
        person_mask=masks,
    )
    out_dir = Path(out_dir)
    save_assets(out_dir, assets)
    report(94)
    write_previews(out_dir, assets)
    report(100)
    return assets.info


def _runs(indices: list[int], step: int) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and i - runs[-1][-1] == step:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [r for r in runs if len(r) * step >= LOOP_MIN]


def _check_consent(path: Path, transcribe: Callable[[np.ndarray], str], full_name: str) -> None:
    """The first seconds must contain the consent statement with the given name."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise TrainingError("consent_phrase_mismatch", "the video has no sound, so the consent statement is missing")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
            if sum(len(c) for c in chunks) > 16000 * 20:
                break
    audio = np.concatenate(chunks).astype(np.float32) / 32768 if chunks else np.zeros(0, np.float32)
    def words(value: str) -> str:
        return " ".join("".join(ch if ch.isalnum() else " " for ch in value.lower()).split())

    text = words(transcribe(audio))
    name = words(full_name)
    logger.info("consent check transcript: %r", text)
    # Names are often heard slightly wrong ("merry" for "mary"): compare spellings loosely.
    from difflib import SequenceMatcher

    tokens, n = text.split(), max(1, len(name.split()))
    best = max((SequenceMatcher(None, " ".join(tokens[k:k + n]), name).ratio()
                for k in range(max(1, len(tokens) - n + 1))), default=0.0)
    if best < 0.75 or "consent" not in text:
        raise TrainingError("consent_phrase_mismatch",
                            f"the first seconds must say \"I, {full_name}, am currently speaking and give consent …\"")
