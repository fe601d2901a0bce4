"""Benchmarks and looks (no Django): renderer cost per frame with encoding, training time on a
generated video, and a contact sheet of a face listening and speaking.

The management commands ``bench_face`` / ``bench_face_training`` wrap these."""
from __future__ import annotations

import fractions
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from conversations.realtime.engines.base import TTSChunk
from faces.assets import FaceAssets

REPLY = ("Thanks for asking! Today I would like to tell you about the ocean, the tides, "
         "and the ships that cross it every single day.")


def reply_chunks(text: str = REPLY, voice: str = "en-us+f3") -> list[TTSChunk]:
    """Speech with phoneme timings from the embedded TTS (eSpeak NG), phrase by phrase."""
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    return list(get_tts().synthesize_blocking(text, voice=VoiceOptions(voice=voice, language="en")))


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "mean": round(float(a.mean()), 3), "max": round(float(a.max()), 3)}


def _encoder(codec: str):
    """The encoder a call really uses: aiortc's, with its own settings and rate control
    (VP8 is what browsers and the aiortc client negotiate first)."""
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    mime = {"h264": "video/H264", "vp8": "video/VP8"}[codec]
    return get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=90_000, payloadType=96))


def bench_render(assets: FaceAssets, seconds: float = 10.0, *, codec: str = "vp8", realtime: bool = False,
                 greenscreen: bool = False, chunks: list[TTSChunk] | None = None, record: bool = False) -> dict:
    """Render a spoken reply frame by frame at 512×512 and encode every frame with the call's
    ``codec`` encoder ("vp8" or "h264", RTP packets included; the RGB→YUV conversion counts as
    encoding). ``realtime`` paces frames at
    25 fps on the wall clock (``fps`` is then the rate achieved), else runs flat out (``fps``
    is the most the renderer and encoder could sustain)."""
    import av

    from faces.renderer import FaceRendererEngine

    renderer = FaceRendererEngine(assets, greenscreen=greenscreen)
    if chunks is None:
        chunks = reply_chunks(" ".join([REPLY] * max(1, int(seconds // 8) + 1)))
    encoder = _encoder(codec)
    recorder = None
    if record:  # what enable_recording adds: the same frames and audio into the call's MP4
        from conversations.realtime.recorder import CallRecorder

        recorder = CallRecorder(Path(tempfile.mkdtemp(prefix="opencvi-rec-bench-")) / "call.mp4",
                                video_size=(renderer.width, renderer.height))
        recorder.start()
        speech = np.concatenate([c.pcm for c in chunks]).astype(np.int16)
        speech = np.repeat(speech, max(1, 48_000 // chunks[0].sample_rate))  # crude 48 kHz, cost is what counts
    for c in chunks:
        renderer.push_audio(c)
    render_ms, encode_ms = [], []
    n = int(seconds * 25)
    start = time.perf_counter()
    for i in range(n):
        if realtime:
            delay = start + i / 25 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        rgb = renderer.next_frame(i * 40.0)
        t1 = time.perf_counter()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i * 3600, fractions.Fraction(1, 90_000)
        encoder.encode(frame)
        t2 = time.perf_counter()
        render_ms.append(1000 * (t1 - t0))
        encode_ms.append(1000 * (t2 - t1))
        if recorder is not None:
            recorder.add_video(rgb, i)
            for k in (2 * i, 2 * i + 1):
                recorder.add_reply_audio(speech[k * 960: (k + 1) * 960] if (k + 1) * 960 <= len(speech)
                                         else np.zeros(960, np.int16), k)
    elapsed = time.perf_counter() - start
    recording = None
    if recorder is not None:
        result = recorder.close()
        recording = {"ms_per_video_frame": round(1000 * recorder.encode_s / max(1, recorder.video_frames), 2),
                     "dropped_frames": recorder.dropped_frames,
                     "bytes_per_second": round(result.size_bytes / max(result.duration_s, 1e-6)) if result else None}
        if result is not None:
            result.path.unlink(missing_ok=True)
    total = [a + b for a, b in zip(render_ms, encode_ms)]
    return {
        "frames": n, "size": renderer.width, "codec": codec, "greenscreen": greenscreen, "realtime": realtime,
        "ms_per_frame": _stats(total),
        "render_ms_per_frame": _stats(render_ms),
        "encode_ms_per_frame": _stats(encode_ms),
        "fps": round(n / elapsed, 2) if realtime else round(1000.0 / max(float(np.mean(total)), 1e-6), 1),
        "late_frames": int(sum(1 for x in total if x > 40)),
        "played_ms": round(renderer.played_ms(), 1),
        **({"recording": recording} if recording is not None else {}),
    }


def bench_training(seconds: float = 60.0, *, work_dir: str | Path | None = None) -> dict:
    """Generate a ``seconds`` long talking video of the stock face (about a third listening
    first, speech, listening at the end) and time ``train_from_video`` on it."""
    from bench.face_video import SPEECH, make_training_video
    from faces.training.legacy import load_assets
    from faces.training.stock import build_stock_face
    from faces.training.video import train_from_video

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="opencvi-train-bench-"))
    build_stock_face(work / "stock")
    assets = load_assets(work / "stock")
    text = " ".join([SPEECH] * max(1, int(round(seconds / 2 / 12))))
    video = make_training_video(work / "train.mp4", assets, listen_s=seconds * 0.3, text=text, seconds=seconds)
    steps: list[tuple[int, float]] = []
    started = time.perf_counter()
    info = train_from_video(video, work / "face", progress=lambda n: steps.append((n, time.perf_counter() - started)))
    elapsed = time.perf_counter() - started
    return {"video_s": seconds, "training_s": round(elapsed, 2), "idle_frames": info.idle_frames,
            "loop_seam": round(info.loop_seam, 3), "loop_step": round(info.loop_step, 3),
            "progress": [[n, round(t, 2)] for n, t in steps], "work_dir": str(work)}


def contact_sheet(assets: FaceAssets, *, chunks: list[TTSChunk] | None = None, tile: int = 192,
                  idle: int = 3, speaking: int = 6, label: bool = True) -> np.ndarray:
    """One row of frames as the renderer makes them: ``idle`` listening, then ``speaking``
    while it says a phrase (RGB uint8)."""
    from faces.renderer import FaceRendererEngine

    renderer = FaceRendererEngine(assets)
    listening = [renderer.next_frame(k * 40.0) for k in range(50)]
    for c in chunks if chunks is not None else reply_chunks("Hello! It is wonderful to see you today."):
        renderer.push_audio(c)
    talking = [renderer.next_frame((50 + k) * 40.0) for k in range(60)]
    # The speaking frames with the widest spread of mouth shapes, in time order.
    x0, y0, x1, y1 = assets.info.mouth_roi
    cx, cy = assets.info.mouth_center
    box = (slice(int(cy - 0.05 * (y1 - y0)), int(cy + 0.2 * (y1 - y0))), slice(int(cx - 0.2 * (x1 - x0)), int(cx + 0.2 * (x1 - x0))))
    dark = np.array([float((cv2.cvtColor(f[box], cv2.COLOR_RGB2GRAY) < 90).mean()) for f in talking])
    order = np.argsort(dark)
    picks = sorted(set(order[np.linspace(0, len(order) - 1, speaking).astype(int)].tolist()))
    frames = [listening[k] for k in np.linspace(0, len(listening) - 1, idle).astype(int)] + [talking[k] for k in picks]
    tiles = []
    for k, f in enumerate(frames):
        t = cv2.resize(f, (tile, tile), interpolation=cv2.INTER_AREA)
        if label:
            text = "listening" if k < idle else "speaking"
            cv2.putText(t, text, (6, tile - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(t, text, (6, tile - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (30, 30, 30), 1, cv2.LINE_AA)
        tiles.append(t)
    return np.hstack(tiles)
