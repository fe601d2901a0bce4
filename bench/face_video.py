"""Synthetic training videos for tests and benchmarks: the stock portrait animated by the
renderer in time with eSpeak NG speech, with listening parts, written as H.264 + AAC mp4."""
from __future__ import annotations

import fractions
from pathlib import Path

import av
import cv2
import numpy as np

from faces.assets import FaceAssets
from faces.renderer import FaceRendererEngine

SPEECH = (
    "Hello, this is a short recording to train my face. I am speaking clearly and looking at the camera. "
    "The weather is lovely today, and I hope you are doing well."
)


def _speech(text: str, voice: str = "en-us+f3"):
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    return get_tts().synthesize_blocking(text, voice=VoiceOptions(voice=voice, language="en"))


def make_training_video(path: str | Path, assets: FaceAssets, *, listen_s: float = 6.0, tail_s: float = 3.0,
                        fps: int = 25, layout: str = "single", text: str = SPEECH, size=(640, 480),
                        seconds: float | None = None, face_scale: float = 1.0, brightness: float = 1.0,
                        sway_px: float = 0.0) -> Path:
    """Write a talking-head video. ``layout``: ``single``, ``two`` (two people side by side) or
    ``none`` (no face at all). ``seconds`` trims/pads the speaking part to that total length.
    For rejection tests: ``face_scale`` shrinks the person in the frame, ``brightness`` darkens
    the picture, ``sway_px`` moves the person left and right by that much (every 2 s)."""
    path = Path(path)
    chunks = _speech(text)
    rate = chunks[0].sample_rate
    renderer = FaceRendererEngine(assets)
    w, h = size
    container = av.open(str(path), mode="w")
    vstream = container.add_stream("libx264", rate=fps)
    vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
    vstream.options = {"preset": "ultrafast", "crf": "23"}
    astream = container.add_stream("aac", rate=16000)
    astream.layout = "mono"

    # Timeline: listening, then each phrase in turn, then listening again.
    speech_ms = sum(c.duration_ms for c in chunks)
    total_ms = (listen_s + tail_s) * 1000 + speech_ms if seconds is None else seconds * 1000
    audio = np.zeros(int(total_ms * 16), np.int16)
    starts = []
    t = listen_s * 1000
    for c in chunks:
        starts.append(t)
        pcm16 = cv2.resize(c.pcm.reshape(-1, 1).astype(np.float32), (1, int(len(c.pcm) * 16000 / rate)),
                           interpolation=cv2.INTER_LINEAR).reshape(-1)
        a = int(t * 16)
        seg = pcm16[: max(0, len(audio) - a)].astype(np.int16)
        audio[a:a + len(seg)] = seg
        t += c.duration_ms

    background = np.full((h, w, 3), (200, 196, 190), np.uint8)
    next_chunk = 0
    n_frames = int(total_ms / 1000 * fps)
    for i in range(n_frames):
        t_ms = i * 1000 / fps
        while next_chunk < len(chunks) and t_ms >= starts[next_chunk]:
            renderer.push_audio(chunks[next_chunk])
            next_chunk += 1
        face = renderer.next_frame(t_ms)
        canvas = background.copy()
        if layout == "single":
            side = int(h * face_scale)
            x = (w - side) // 2 + int(sway_px * np.sin(2 * np.pi * t_ms / 2000))
            x = int(np.clip(x, 0, w - side))
            y = (h - side) // 2
            canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        elif layout == "two":
            side = w // 2
            small = cv2.resize(face, (side, side))
            y = (h - side) // 2
            canvas[max(0, y):y + side, :side] = small[max(0, -y):max(0, -y) + h]
            canvas[max(0, y):y + side, side:] = cv2.flip(small, 1)[max(0, -y):max(0, -y) + h]
        if brightness != 1.0:
            canvas = np.clip(canvas * brightness, 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
        frame.pts = i
        frame.time_base = fractions.Fraction(1, fps)
        for packet in vstream.encode(frame):
            container.mux(packet)
    for packet in vstream.encode():
        container.mux(packet)
    hop = 1024
    for k in range(0, len(audio), hop):
        block = audio[k:k + hop]
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        frame.pts = k
        frame.time_base = fractions.Fraction(1, 16000)
        for packet in astream.encode(frame):
            container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)
    container.close()
    return path


def make_variant_videos(out_dir: str | Path, assets: FaceAssets) -> dict[str, Path]:
    """The training videos the tests need: ``good`` (one face, listening then speaking then
    listening, ~18 s), ``two`` (two faces side by side), ``none`` (no face), ``slow`` (5 fps),
    ``dark``, ``far`` (a small face), ``moving`` (swaying left and right) and ``garbage``
    (random bytes named .mp4)."""
    import os

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    videos = {
        "good": make_training_video(out / "good.mp4", assets),
        "two": make_training_video(out / "two.mp4", assets, layout="two", listen_s=2, tail_s=1),
        "none": make_training_video(out / "none.mp4", assets, layout="none", listen_s=2, tail_s=1),
        "slow": make_training_video(out / "slow.mp4", assets, fps=5, listen_s=2, tail_s=1),
        "dark": make_training_video(out / "dark.mp4", assets, brightness=0.15, listen_s=2, tail_s=1),
        "far": make_training_video(out / "far.mp4", assets, face_scale=0.28, listen_s=2, tail_s=1),
        "moving": make_training_video(out / "moving.mp4", assets, sway_px=150, listen_s=2, tail_s=1),
    }
    garbage = out / "garbage.mp4"
    garbage.write_bytes(os.urandom(200_000))
    videos["garbage"] = garbage
    return videos
