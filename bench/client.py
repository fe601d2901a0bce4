"""A headless OpenCVI client over real WebRTC (aiortc), Django-free: what tests and the
latency benchmark use to talk to a conversation exactly as a browser does.

It speaks audio in real time (20 ms frames, silence between utterances), optionally sends a
camera, receives the reply audio and face video, and records when things happen:
``last_voiced_sent`` (the last voiced sample of each utterance leaving the client) and the
arrival of reply audio above a level threshold, so the utterance-to-utterance latency is
measured where a user would feel it.
"""
from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from conversations.realtime.ice import drain_datagram_sockets, include_loopback_candidates
from conversations.realtime.media import AUDIO_RATE, AUDIO_SAMPLES

REPLY_LEVEL = 500  # int16 peak that counts as "reply audio is playing"


class Signalling(Protocol):
    async def send_json(self, data: dict[str, Any]) -> None: ...
    async def receive_json(self, timeout: float) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class WebsocketSignalling:
    """Signalling over a real WebSocket (the ``websockets`` package)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ws = None

    async def open(self) -> None:
        import websockets

        self._ws = await websockets.connect(self.url, max_size=2**22, open_timeout=20)

    async def send_json(self, data: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(data))

    async def receive_json(self, timeout: float | None) -> dict[str, Any]:
        if timeout is None:
            return json.loads(await self._ws.recv())
        return json.loads(await asyncio.wait_for(self._ws.recv(), timeout))

    async def close(self) -> None:
        if self._ws is not None:
            await asyncio.wait_for(self._ws.close(), 10)


class SpeechTrack(MediaStreamTrack):
    """Mic: plays queued utterances in real time, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[tuple[np.ndarray, asyncio.Future]] = []
        self._current: np.ndarray | None = None
        self._pos = 0
        self._future: asyncio.Future | None = None
        self._last_voiced_index = -1
        self._n = 0
        self._start: float | None = None

    def speak(self, pcm48k: np.ndarray) -> asyncio.Future:
        """Queue int16 48 kHz mono speech; the future resolves with the monotonic time its last
        voiced sample was sent."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((np.asarray(pcm48k, dtype=np.int16), future))
        return future

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._n * AUDIO_SAMPLES / AUDIO_RATE
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out = np.zeros(AUDIO_SAMPLES, np.int16)
        if self._current is None and self._queue:
            self._current, self._future = self._queue.pop(0)
            self._pos = 0
            voiced = np.nonzero(np.abs(self._current) > 300)[0]
            self._last_voiced_index = int(voiced[-1]) if len(voiced) else 0
        if self._current is not None:
            chunk = self._current[self._pos:self._pos + AUDIO_SAMPLES]
            out[: len(chunk)] = chunk
            before, self._pos = self._pos, self._pos + AUDIO_SAMPLES
            if before <= self._last_voiced_index < self._pos and self._future and not self._future.done():
                self._future.set_result(time.monotonic())
            if self._pos >= len(self._current):
                if self._future and not self._future.done():
                    self._future.set_result(time.monotonic())
                self._current = None
        frame = AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._n * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._n += 1
        return frame


class CameraTrack(MediaStreamTrack):
    """Camera: frames from a callable ``frame_at(t_s) -> RGB array`` at ``fps``."""

    kind = "video"

    def __init__(self, frame_at: Callable[[float], np.ndarray], fps: int = 15) -> None:
        super().__init__()
        self._frame_at = frame_at
        self._fps = fps
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._n / self._fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = VideoFrame.from_ndarray(self._frame_at(self._n / self._fps), format="rgb24")
        frame.pts = int(self._n * 90000 / self._fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


@dataclass
class Received:
    audio_frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival, peak)
    audio: list[np.ndarray] = field(default_factory=list)
    video_times: list[float] = field(default_factory=list)
    last_video: np.ndarray | None = None
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


class CVIClient:
    """One participant. ``await connect()``, ``await say(pcm48k)``, inspect ``received``."""

    def __init__(self, signalling: Signalling, *, camera: CameraTrack | None = None, keep_audio: bool = True,
                 on_video: Callable[[float, np.ndarray], None] | None = None) -> None:
        include_loopback_candidates()
        drain_datagram_sockets()
        self.signalling = signalling
        self.pc = RTCPeerConnection()
        self.mic = SpeechTrack()
        self.camera = camera
        self.received = Received()
        self.keep_audio = keep_audio
        self.on_video = on_video
        self.joined: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.ended: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._event_cond = asyncio.Condition()
        self.channel = None

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def connect(self, timeout: float = 30) -> None:
        first = await self.signalling.receive_json(timeout)
        if first.get("type") != "joined":
            raise RuntimeError(f"join refused: {first}")
        self.joined = first["conversation"]
        self.channel = self.pc.createDataChannel("opencvi")

        @self.channel.on("message")
        def on_message(message: str) -> None:
            data = json.loads(message)
            if data.get("type") == "ping":
                self.channel.send(json.dumps({"type": "pong"}))

        self.pc.addTrack(self.mic)
        if self.camera is not None:
            self.pc.addTrack(self.camera)
        else:
            self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._spawn(self._consume(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.signalling.send_json({"type": "offer", "sdp": self.pc.localDescription.sdp})
        while True:
            msg = await self.signalling.receive_json(timeout)
            if msg.get("type") == "answer":
                break
            await self._handle(msg)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        self._spawn(self._read_signalling())
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if time.monotonic() > deadline:
                raise TimeoutError(f"peer connection state {self.pc.connectionState}")
            await asyncio.sleep(0.05)

    async def _read_signalling(self) -> None:
        while True:
            try:
                msg = await self.signalling.receive_json(None)
            except Exception:  # noqa: BLE001 - the socket closed
                return
            await self._handle(msg)

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "event":
            async with self._event_cond:
                self.received.events.append((time.monotonic(), msg["event"]))
                self._event_cond.notify_all()
        elif kind == "error":
            self.errors.append(msg)
        elif kind == "ended":
            self.ended = msg.get("reason", "")
            async with self._event_cond:
                self._event_cond.notify_all()

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "audio":
                pcm = frame.to_ndarray().reshape(-1)
                channels = len(frame.layout.channels)
                if channels > 1:
                    pcm = pcm.reshape(-1, channels)[:, 0]
                self.received.audio_frames.append((now, int(np.abs(pcm).max()) if len(pcm) else 0))
                if self.keep_audio:
                    self.received.audio.append(pcm.astype(np.int16))
            else:
                self.received.video_times.append(now)
                if self.on_video is not None:
                    # decoded to RGB in a thread: four calls' frames would otherwise load the loop
                    rgb = await asyncio.to_thread(frame.to_ndarray, format="rgb24")
                    self.received.last_video = rgb
                    self.on_video(now, rgb)
                elif len(self.received.video_times) % 5 == 0:
                    self.received.last_video = frame.to_ndarray(format="rgb24")

    async def say(self, pcm48k: np.ndarray) -> float:
        """Speak; returns the monotonic time the last voiced sample was sent."""
        return await self.mic.speak(pcm48k)

    async def send(self, event_type: str, properties: dict[str, Any] | None = None) -> None:
        await self.signalling.send_json({"type": "message", "message": {
            "message_type": "conversation", "event_type": event_type, "properties": properties or {}}})

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for _, e in self.received.events if e.get("event_type") == event_type]

    async def wait_event(self, event_type: str, *, timeout: float, after: float = 0.0,
                         where: Callable[[dict[str, Any]], bool] | None = None) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        async with self._event_cond:
            while True:
                for t, event in self.received.events:
                    if t >= after and event.get("event_type") == event_type and (where is None or where(event)):
                        return t, event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.ended is not None:
                    raise TimeoutError(f"no {event_type} within {timeout}s (ended={self.ended})")
                try:
                    await asyncio.wait_for(self._event_cond.wait(), remaining)
                except asyncio.TimeoutError:
                    pass

    def first_reply_audio_after(self, t: float) -> float | None:
        for arrival, peak in self.received.audio_frames:
            if arrival >= t and peak >= REPLY_LEVEL:
                return arrival
        return None

    def video_fps(self, since: float | None = None) -> float:
        times = [t for t in self.received.video_times if since is None or t >= since]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    async def close(self) -> None:
        try:
            await self.signalling.send_json({"type": "leave"})
        except Exception:  # noqa: BLE001
            pass
        # Closing the socket first ends the signalling reader by itself; then cancel the rest.
        try:
            await self.signalling.close()
        except Exception:  # noqa: BLE001 - already closed by the server
            pass
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        await self.pc.close()
