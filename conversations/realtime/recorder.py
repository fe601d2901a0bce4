"""Call recording (no Django): what the call sounded and looked like, in one file.

The recorder takes the reply audio and the face video exactly as the ``MediaPump`` sends them
to the peers (the same frame numbers, so the recording is in sync by construction) and mixes
the participants' microphone audio into the reply audio. Encoding runs on a thread of its
own, never on the event loop: MP4 with H.264 + AAC, or M4A (AAC) for an audio-only call.
The participants' cameras are not recorded.

The file is written under a temporary name and renamed when it is complete, so a crash never
leaves a half-written file that looks like a recording.
"""
from __future__ import annotations

import fractions
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import StreamResampler

logger = logging.getLogger(__name__)

RATE = 48_000
VIDEO_FPS = 25
#: microphone audio waiting to be mixed; more than this (no reply audio being pulled) is dropped
MAX_USER_BUFFER_S = 1.0
#: frames waiting for the encoder thread (about 10 s of a call); past it, frames are dropped
MAX_QUEUE = 750
#: past this many waiting frames, video frames are dropped (audio keeps the rest of the queue)
VIDEO_QUEUE_LIMIT = MAX_QUEUE // 2


@dataclass(frozen=True)
class Recording:
    path: Path
    duration_s: float
    video: bool
    size_bytes: int


class CallRecorder:
    """Feed it from the event loop; :meth:`close` (blocking: run it in a thread) finishes the file."""

    def __init__(self, path: str | Path, *, video_size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.video_size = video_size
        self._tmp = self.path.with_name(self.path.name + ".part")
        self._queue: queue.Queue = queue.Queue(MAX_QUEUE)
        self._mics: dict[object, np.ndarray] = {}  # per participant: audio waiting to be mixed
        self._resamplers: dict[object, StreamResampler] = {}  # per participant, stateful across chunks
        self._mic_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.path.stem}", daemon=True)
        self._closed = False
        self.dropped_frames = 0
        self.audio_samples = 0
        self.video_frames = 0
        self.encode_s = 0.0  # time the encoder thread spent encoding and writing
        self.error: str = ""

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    # ------------------------------------------------------------------ inputs (event loop)
    def add_user_audio(self, pcm: np.ndarray, rate: int, channels: int = 1, *, source: object = None) -> None:
        """Microphone audio as it arrives (any rate, int16 or float, interleaved channels);
        ``source`` tells participants apart, so two people talking at once are mixed, not queued."""
        if self._closed:
            return
        x = np.asarray(pcm)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        if channels > 1:
            x = x.reshape(-1, channels).mean(axis=1)
        if rate != RATE:
            resampler = self._resamplers.get(source)
            if resampler is None or resampler.src_rate != rate:
                resampler = self._resamplers[source] = StreamResampler(rate, RATE)
            x = resampler.process(x)
        x16 = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
        with self._mic_lock:
            waiting = self._mics.get(source, np.zeros(0, np.int16))
            self._mics[source] = np.concatenate([waiting, x16])[-int(MAX_USER_BUFFER_S * RATE):]

    def add_reply_audio(self, pcm: np.ndarray, index: int) -> None:
        """The pump's audio frame ``index`` (int16, 48 kHz mono), with the microphone mixed in."""
        if self._closed:
            return
        reply = np.asarray(pcm, np.int16).reshape(-1)
        n = len(reply)
        mixed = reply.astype(np.int32)
        with self._mic_lock:
            for source, waiting in self._mics.items():
                mixed[: min(n, len(waiting))] += waiting[:n]
                self._mics[source] = waiting[n:]
        self._put(("audio", np.clip(mixed, -32768, 32767).astype(np.int16), index * n))

    def add_video(self, rgb: np.ndarray, index: int) -> None:
        """The pump's video frame ``index`` (RGB, 25 fps)."""
        if self._closed or self.video_size is None:
            return
        if self._queue.qsize() > VIDEO_QUEUE_LIMIT:
            self.dropped_frames += 1  # the encoder is behind: drop video first, keep the sound whole
            return
        self._put(("video", np.array(rgb, copy=True), index))  # the renderer may reuse its buffer

    def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped_frames += 1
            if self.dropped_frames in (1, 100, 1000):
                logger.warning("recorder %s: encoder behind, %d frame(s) dropped", self.path.name, self.dropped_frames)

    # ------------------------------------------------------------------ finish
    def close(self, timeout: float = 60.0) -> Recording | None:
        """Flush the encoders and finish the file (blocking). None if nothing was recorded."""
        if not self._closed:
            self._closed = True
            if self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout)
                if self._thread.is_alive():
                    self.error = self.error or "the encoder did not finish in time"
        if self.error or self.audio_samples == 0 or not self._tmp.exists():
            self._tmp.unlink(missing_ok=True)
            if self.error:
                logger.error("recording %s failed: %s", self.path.name, self.error)
            return None
        self._tmp.replace(self.path)
        return Recording(self.path, round(self.audio_samples / RATE, 2), self.video_size is not None,
                         self.path.stat().st_size)

    # ------------------------------------------------------------------ encoder thread
    def _run(self) -> None:
        import av

        container = None
        try:
            container = av.open(str(self._tmp), "w", format="mp4")
            audio = container.add_stream("aac", rate=RATE, layout="mono")
            audio.bit_rate = 64_000
            video = None
            if self.video_size is not None:
                video = container.add_stream("libx264", rate=VIDEO_FPS)
                video.width, video.height = self.video_size
                video.pix_fmt = "yuv420p"
                video.options = {"preset": "ultrafast", "crf": "26", "tune": "zerolatency"}
            while True:
                item = self._queue.get()
                if item is None:
                    break
                kind, data, pts = item
                started = time.perf_counter()
                if kind == "audio":
                    frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
                    frame.sample_rate = RATE
                    frame.pts, frame.time_base = pts, fractions.Fraction(1, RATE)
                    container.mux(audio.encode(frame))
                    self.audio_samples = max(self.audio_samples, pts + len(data))
                else:
                    frame = av.VideoFrame.from_ndarray(data, format="rgb24")
                    frame.pts, frame.time_base = pts, fractions.Fraction(1, VIDEO_FPS)
                    container.mux(video.encode(frame))
                    self.video_frames += 1
                self.encode_s += time.perf_counter() - started
            container.mux(audio.encode(None))
            if video is not None:
                container.mux(video.encode(None))
        except Exception as exc:  # noqa: BLE001 - reported by close(); the call goes on without it
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("recorder %s failed", self.path.name)
            self._closed = True
            # keep draining so the event loop's puts never block on a dead encoder
            started = time.monotonic()
            while time.monotonic() - started < 5:
                try:
                    if self._queue.get(timeout=0.5) is None:
                        break
                except queue.Empty:
                    break
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception as exc:  # noqa: BLE001
                    self.error = self.error or f"closing the file: {exc}"
