"""What a training video is (PyAV), and whether it can work at all, before any heavy step.

Limits for OpenCVI's embedded trainer (the hosted product asks for ~1 minute at ≥ 25 fps):
10 s to 5 min, at least 20 frames per second, a common codec, at most 1 GB, at least 240
pixels on the short side. Rejections raise :class:`TrainingError` with the documented codes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from faces.training.errors import TrainingError

CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores", "mjpeg"}
MIN_S, MAX_S = 10.0, 300.0
MIN_FPS = 20.0
MAX_BYTES = 1_000_000_000
MIN_SIDE = 240


@dataclass
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    has_audio: bool
    frames: int
    size_bytes: int = 0


def probe(path: str | Path) -> VideoInfo:
    """Read a video's container and stream headers (no decoding)."""
    size = os.path.getsize(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise TrainingError("video_format", "the file has no video track")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            duration = float(stream.duration * stream.time_base) if stream.duration else (
                float(container.duration) / av.time_base if container.duration else 0.0)
            frames = stream.frames or int(round(duration * fps))
            return VideoInfo(duration, fps, stream.codec_context.width, stream.codec_context.height, codec,
                             bool(container.streams.audio), frames, size)
    except TrainingError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError, TypeError, ZeroDivisionError) as exc:
        raise TrainingError("video_format", f"the file is not a video we can read ({type(exc).__name__})") from None


def check_video(info: VideoInfo, *, min_s: float = MIN_S, max_s: float = MAX_S) -> None:
    """Reject what cannot train, in the order a person would fix it."""
    if info.size_bytes > MAX_BYTES:
        raise TrainingError("file_size", f"the file is {info.size_bytes / 1e6:.0f} MB; keep it under "
                                         f"{MAX_BYTES / 1e6:.0f} MB (about a minute of video)")
    if info.codec not in CODECS:
        raise TrainingError("video_codec", f"the video is encoded with {info.codec}; use H.264 (mp4) or VP8/VP9 (webm)")
    if info.fps < MIN_FPS:
        raise TrainingError("video_fps", f"the video has {info.fps:.0f} frames per second; record at 25 fps or more")
    if info.duration_s < min_s:
        raise TrainingError("video_duration", f"the video lasts {info.duration_s:.1f} s; record at least {min_s:.0f} s "
                                              "(about a minute is best: half speaking, half listening)")
    if info.duration_s > max_s:
        raise TrainingError("video_duration", f"the video lasts {info.duration_s:.0f} s; keep it under {max_s:.0f} s")
    if min(info.width, info.height) < MIN_SIDE:
        raise TrainingError("video_format", f"the video is only {info.width}×{info.height} pixels; record at least "
                                            "640×480")
