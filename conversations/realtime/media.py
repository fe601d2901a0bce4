"""Outgoing media for WebRTC (aiortc), Django-free: one clock for reply audio and face video.

One ``MediaPump`` per conversation reads the pipeline's reply audio (20 ms) and face video
(40 ms) on ONE media clock and fans the frames out to every connected peer's outgoing
tracks (``QueuedTrack``, bounded), so lip-sync holds by construction: the video frame for
time t is rendered right after the audio that plays at t was taken from the pipeline. A call
recorder, when set, gets the same frames. The process's ``VideoGovernor`` (``VIDEO_GOVERNOR``)
thins every call's face frame rate when the process falls behind, before audio suffers.
The peers themselves are ``peer.PeerSession``.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

logger = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_PTIME_S = 0.020
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME_S)
VIDEO_FPS = 25
VIDEO_CLOCK = 90_000
#: outgoing track queues: a slow peer drops old frames instead of growing memory
TRACK_QUEUE_FRAMES = 10


class QueuedTrack(MediaStreamTrack):
    """An outgoing track fed by the pump. Bounded: when a peer lags, the oldest frame goes."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[Any] = asyncio.Queue(TRACK_QUEUE_FRAMES)
        self.dropped = 0

    def offer(self, frame: Any) -> None:
        if self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        super().stop()
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass


class VideoGovernor:
    """Degrade, don't collapse: one per process, it lowers every call's face frame rate when the
    process cannot render and encode video in time, before audio suffers (audio is always
    taken first by the pumps and never thinned).

    Every ``window_s`` it looks at the pumps' late frames (a frame due before the last one was
    out) and the event loop's stalls; under pressure the frame *stride* grows (25 → 12.5 →
    8.3 fps), after ``calm_windows`` quiet windows it shrinks again."""

    MAX_STRIDE = 3
    #: more event-loop stalls (> 50 ms) than this per second count as pressure
    STALLS_PER_S = 3

    def __init__(self, *, window_s: float = 2.0, late_ratio: float = 0.05, calm_windows: int = 5) -> None:
        self.window_s = window_s
        self.late_ratio = late_ratio
        self.calm_windows = calm_windows
        self.stride = 1
        self._pumps: set[MediaPump] = set()
        self._task: asyncio.Task | None = None
        self._calm = 0
        self._seen: dict[int, tuple[int, int]] = {}  # id(pump) -> (frames, late) at the last look
        self._stalls_seen = 0

    @property
    def fps(self) -> float:
        return VIDEO_FPS / self.stride

    def stride_for(self, speaking: bool) -> int:
        """A face that is listening or thinking (idle motion: blinks, sway) while other calls
        share the process renders at half rate, so the CPU goes to the speech and language
        models that answer; a speaking face keeps the full rate for lip-sync."""
        if speaking or len(self._pumps) < 2:
            return self.stride
        return max(self.stride, 2)

    def register(self, pump: "MediaPump") -> None:
        self._pumps.add(pump)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="video-governor")

    def unregister(self, pump: "MediaPump") -> None:
        self._pumps.discard(pump)
        self._seen.pop(id(pump), None)
        if not self._pumps and self._task is not None:
            self._task.cancel()
            self._task = None
            self.stride = 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.window_s)
            self.decide(self._pressure())

    def _pressure(self) -> bool:
        frames = late = 0
        for pump in list(self._pumps):
            f0, l0 = self._seen.get(id(pump), (0, 0))
            frames += pump.video_frames - f0
            late += pump.late_video_frames - l0
            self._seen[id(pump)] = (pump.video_frames, pump.late_video_frames)
        from .loopwatch import loop_watch

        watch = loop_watch()
        stalls = 0
        if watch is not None:
            stalls = watch.stall_count - self._stalls_seen
            self._stalls_seen = watch.stall_count
        # late frames: the renderer/encoder cannot keep up; many loop stalls: the GIL is short
        return (frames + late > 0 and late / (frames + late) > self.late_ratio) or stalls > self.STALLS_PER_S * self.window_s

    def decide(self, pressure: bool) -> None:
        if pressure:
            self._calm = 0
            if self.stride < self.MAX_STRIDE:
                self.stride += 1
                logger.warning("video falls behind: face video at %.1f fps for %d call(s)", self.fps, len(self._pumps))
        else:
            self._calm += 1
            if self.stride > 1 and self._calm >= self.calm_windows:
                self.stride -= 1
                self._calm = 0
                logger.info("video keeps up again: face video at %.1f fps", self.fps)


#: the process's governor (every pump of the process registers with it)
VIDEO_GOVERNOR = VideoGovernor()


class MediaPump:
    """Paces reply audio and face video on one clock and fans them out to the peers."""

    def __init__(
        self,
        read_audio: Callable[[int], np.ndarray],
        render_video: Callable[[float], np.ndarray | None] | None,
        *,
        audio_only: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        governor: VideoGovernor | None = VIDEO_GOVERNOR,
        speaking: Callable[[], bool] = lambda: True,
    ) -> None:
        self._read_audio = read_audio
        self._render_video = None if audio_only else render_video
        self._monotonic = monotonic
        self._governor = governor if self._render_video is not None else None
        self._speaking = speaking
        self._audio_tracks: set[QueuedTrack] = set()
        self._video_tracks: set[QueuedTrack] = set()
        self._task: asyncio.Task | None = None
        self.audio_frames = 0
        self.video_frames = 0
        self.late_video_frames = 0
        self.render_errors = 0
        self._last_rgb: np.ndarray | None = None
        self.render_ms: list[float] = []
        #: a ``CallRecorder`` (or None): gets every audio and video frame the peers get
        self.recorder: Any = None

    def add_tracks(self) -> tuple[QueuedTrack, QueuedTrack | None]:
        audio = QueuedTrack("audio")
        self._audio_tracks.add(audio)
        video = None
        if self._render_video is not None:
            video = QueuedTrack("video")
            self._video_tracks.add(video)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-pump")
            if self._governor is not None:
                self._governor.register(self)
        return audio, video

    def remove_tracks(self, *tracks: QueuedTrack | None) -> None:
        for track in tracks:
            if track is None:
                continue
            self._audio_tracks.discard(track)
            self._video_tracks.discard(track)
            track.stop()

    @property
    def has_peers(self) -> bool:
        return bool(self._audio_tracks)

    async def close(self) -> None:
        if self._governor is not None:
            self._governor.unregister(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for track in list(self._audio_tracks | self._video_tracks):
            track.stop()
        self._audio_tracks.clear()
        self._video_tracks.clear()

    async def _run(self) -> None:
        start = self._monotonic()
        audio_n = 0
        video_n = 0
        video_pending: asyncio.Task | None = None
        try:
            while True:
                now = self._monotonic() - start
                # Audio first: what is read now is what plays at audio_n * 20 ms.
                while audio_n * AUDIO_PTIME_S <= now:
                    pcm = self._read_audio(AUDIO_SAMPLES) if self._audio_tracks else np.zeros(AUDIO_SAMPLES, np.int16)
                    if self.recorder is not None:
                        self.recorder.add_reply_audio(pcm, audio_n)
                    frame = AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1),
                                                    format="s16", layout="mono")
                    frame.sample_rate = AUDIO_RATE
                    frame.pts = audio_n * AUDIO_SAMPLES
                    frame.time_base = fractions.Fraction(1, AUDIO_RATE)
                    for track in list(self._audio_tracks):
                        track.offer(frame)
                    audio_n += 1
                    self.audio_frames += 1
                if self._render_video is not None and video_n / VIDEO_FPS <= now:
                    t_ms = 1000.0 * video_n / VIDEO_FPS
                    if video_pending is None:
                        video_pending = asyncio.ensure_future(self._render(t_ms, video_n))
                    if video_pending.done():
                        video_pending.result()
                        video_pending = None
                        # the governor's stride thins the frame rate when the box is short of CPU
                        stride = self._governor.stride_for(self._speaking()) if self._governor is not None else 1
                        video_n += stride
                        # Never fall behind by more than a frame: skip ahead instead of bursting.
                        behind = int((self._monotonic() - start) * VIDEO_FPS) - video_n
                        if behind > stride:
                            self.late_video_frames += behind
                            video_n += behind
                        continue
                next_audio = audio_n * AUDIO_PTIME_S
                next_video = video_n / VIDEO_FPS if self._render_video is not None else next_audio
                wait = min(next_audio, next_video) - (self._monotonic() - start)
                await asyncio.sleep(max(0.0, min(wait, 0.005 if video_pending else wait)))
        except asyncio.CancelledError:
            if video_pending is not None:
                video_pending.cancel()
            raise

    async def _render(self, t_ms: float, n: int) -> None:
        started = time.perf_counter()
        try:
            rgb = await asyncio.to_thread(self._render_video, t_ms)
        except Exception:  # noqa: BLE001 - a renderer bug must not stop the call's audio
            self.render_errors += 1
            if self.render_errors <= 3:
                logger.exception("face renderer failed at t=%.0f ms", t_ms)
            rgb = self._last_rgb
        self._last_rgb = rgb
        self.render_ms.append(1000 * (time.perf_counter() - started))
        if len(self.render_ms) > 500:
            del self.render_ms[:250]
        if rgb is None:
            return
        if self.recorder is not None:
            self.recorder.add_video(rgb, n)
        frame = VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int(n * VIDEO_CLOCK / VIDEO_FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        for track in list(self._video_tracks):
            track.offer(frame)
        self.video_frames += 1
