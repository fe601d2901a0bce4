"""One participant's WebRTC peer connection (aiortc), Django-free.

A ``PeerSession`` is an ``RTCPeerConnection`` that answers the browser's offer with the
conversation's reply tracks (from the ``media.MediaPump``), sends the participant's mic audio
to the pipeline, offers their camera and shared-screen frames (sampled) to perception, and
carries the interactions protocol both ways on its data channel, with a keepalive that closes
a peer that went silent.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .events import ErrorOccurred
from .ice import drain_datagram_sockets, include_loopback_candidates
from .media import MediaPump, QueuedTrack
from .protocol import to_wire

logger = logging.getLogger(__name__)

#: aiortc's SCTP refuses larger messages; browsers accept 256 KiB, aiortc 64 KiB.
MAX_DATA_CHANNEL_MESSAGE = 60_000
#: a peer that sends nothing on the data channel for this long is considered gone
KEEPALIVE_TIMEOUT_S = 20.0
KEEPALIVE_INTERVAL_S = 5.0


MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]


class PeerSession:
    """One participant's peer connection."""

    def __init__(
        self,
        *,
        pump: MediaPump,
        on_audio: Callable[[np.ndarray, int, int], None],
        on_message: MessageHandler,
        on_closed: Callable[["PeerSession"], Awaitable[None]],
        on_video: Callable[[np.ndarray, float], None] | None = None,
        video_sample_fps: float = 2.0,
        on_screen: Callable[[np.ndarray, float], None] | None = None,
        screen_sample_fps: float = 1.0,
        configuration: RTCConfiguration | None = None,
        label: str = "",
    ) -> None:
        include_loopback_candidates()
        drain_datagram_sockets()
        self.label = label
        self.pc = RTCPeerConnection(configuration=configuration or RTCConfiguration(iceServers=[]))
        self._pump = pump
        self._on_audio = on_audio
        self._on_message = on_message
        self._on_closed = on_closed
        self._on_video = on_video
        # a second incoming video track is the participant's shared screen
        self._on_screen = on_screen
        self._screen_interval = 1.0 / screen_sample_fps if screen_sample_fps > 0 else None
        self._video_tracks_seen = 0
        self._video_interval = 1.0 / video_sample_fps if video_sample_fps > 0 else None
        self._tasks: set[asyncio.Task] = set()
        self._channel = None
        self._last_seen = time.monotonic()
        self._closed = False
        self.audio_track: QueuedTrack | None = None
        self.video_track: QueuedTrack | None = None
        self.connected = asyncio.Event()
        self.received_audio_frames = 0
        self.received_video_frames = 0

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._consume_audio(track))
            elif track.kind == "video":
                self._video_tracks_seen += 1
                if self._video_tracks_seen == 1:
                    self._spawn(self._consume_video(track))
                else:
                    self._spawn(self._consume_video(track, screen=True))

        @self.pc.on("datachannel")
        def on_datachannel(channel) -> None:
            self._channel = channel
            self._last_seen = time.monotonic()

            @channel.on("message")
            def on_dc_message(message: Any) -> None:
                self._last_seen = time.monotonic()
                self._spawn(self._handle_dc_message(message))

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            state = self.pc.connectionState
            # a live peer that fails (ICE consent expired: the loop or the network stalled) is news
            logger.log(logging.WARNING if state == "failed" else logging.INFO, "peer %s connection %s", self.label, state)
            if state == "connected":
                self.connected.set()
            elif state in ("failed", "closed"):
                await self.close()

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def accept_offer(self, sdp: str, sdp_type: str = "offer") -> str:
        """Apply the browser's offer, attach the reply tracks, and return the full answer
        (aiortc gathers every candidate first, so no trickle is needed)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sdp_type))
        self.audio_track, self.video_track = self._pump.add_tracks()
        # addTrack reuses the transceivers the offer created (sendrecv from the browser).
        self.pc.addTrack(self.audio_track)
        offers_video = any(t.kind == "video" for t in self.pc.getTransceivers())
        if self.video_track is not None and offers_video:
            self.pc.addTrack(self.video_track)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self._spawn(self._keepalive())
        return self.pc.localDescription.sdp

    # ------------------------------------------------------------------ inbound media
    async def _consume_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.received_audio_frames += 1
            pcm = frame.to_ndarray()
            channels = len(frame.layout.channels)
            # Packed formats come as one row of interleaved samples; planar as one row per channel.
            if pcm.ndim == 2 and pcm.shape[0] == channels and channels > 1 and frame.format.is_planar:
                pcm = pcm.T.reshape(-1)
            self._on_audio(pcm.reshape(-1), frame.sample_rate, channels)

    async def _consume_video(self, track: MediaStreamTrack, *, screen: bool = False) -> None:
        last = 0.0
        handler = self._on_screen if screen else self._on_video
        interval = self._screen_interval if screen else self._video_interval
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.received_video_frames += 1
            if handler is None or interval is None:
                continue
            now = time.monotonic()
            if now - last < interval:
                continue  # sampled: decoding every frame to RGB would waste the CPU
            last = now
            rgb = await asyncio.to_thread(frame.to_ndarray, format="rgb24")
            handler(rgb, 1000.0 * now)

    # ------------------------------------------------------------------ data channel
    async def _handle_dc_message(self, message: Any) -> None:
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        if len(message) > MAX_DATA_CHANNEL_MESSAGE:
            self._refuse(f"message too large ({len(message)} bytes; the limit is {MAX_DATA_CHANNEL_MESSAGE})",
                         "message_too_large")
            return
        try:
            data = json.loads(message)
        except ValueError:
            self._refuse("messages must be JSON objects", "bad_message")
            return
        if isinstance(data, dict) and data.get("type") in ("ping", "pong"):
            if data["type"] == "ping":
                self.send({"type": "pong"})
            return
        await self._on_message(data)

    def _refuse(self, reason: str, code: str) -> None:
        """A data-channel message that never reached the protocol: a ``system.error`` back."""
        self.send(to_wire(ErrorOccurred(reason=reason, code=code, timestamp=time.time()), self.label))

    def send(self, payload: dict[str, Any]) -> bool:
        """Send an event on the data channel (False if it is not open or too large)."""
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return False
        text = json.dumps(payload, separators=(",", ":"), default=str)
        if len(text.encode()) > MAX_DATA_CHANNEL_MESSAGE:
            return False  # the WebSocket mirror still carries it
        try:
            channel.send(text)
        except Exception:  # noqa: BLE001 - a closing channel must not break the session
            return False
        return True

    async def _keepalive(self) -> None:
        """aiortc does not notice a vanished browser quickly: ping on the data channel and
        close the peer when nothing comes back."""
        while not self._closed:
            await asyncio.sleep(KEEPALIVE_INTERVAL_S)
            if self._channel is not None:
                self.send({"type": "ping", "t": time.time()})
                if time.monotonic() - self._last_seen > KEEPALIVE_TIMEOUT_S:
                    logger.warning("peer %s silent on the data channel for %.0f s: closing", self.label,
                                   KEEPALIVE_TIMEOUT_S)
                    self._spawn(self.close())
                    return

    # ------------------------------------------------------------------ close
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pump.remove_tracks(self.audio_track, self.video_track)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pc.close()
        await self._on_closed(self)
