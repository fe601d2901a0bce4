"""WebRTC transport (aiortc), Django-free.

One ``MediaPump`` per conversation reads the pipeline's reply audio (20 ms) and face video
(40 ms) on ONE media clock and fans the frames out to every connected peer's outgoing
tracks, so lip-sync holds by construction: the video frame for time t is rendered right
after the audio that plays at t was taken from the pipeline. Each ``PeerSession`` is one
participant: an ``RTCPeerConnection`` whose incoming mic audio goes to the pipeline, whose
camera frames are offered (sampled) to perception, and whose data channel carries the
interactions protocol both ways.
"""
from __future__ import annotations

import asyncio
import fractions
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

logger = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_PTIME_S = 0.020
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME_S)
VIDEO_FPS = 25
VIDEO_CLOCK = 90_000
#: aiortc's SCTP refuses larger messages; browsers accept 256 KiB, aiortc 64 KiB.
MAX_DATA_CHANNEL_MESSAGE = 60_000
#: a peer that sends nothing on the data channel for this long is considered gone
KEEPALIVE_TIMEOUT_S = 20.0
KEEPALIVE_INTERVAL_S = 5.0
#: outgoing track queues: a slow peer drops old frames instead of growing memory
TRACK_QUEUE_FRAMES = 10


def include_loopback_candidates() -> None:
    """aioice gathers host candidates on every interface but loopback; a server and a browser
    on the same machine (and two peers in one test) need loopback too."""
    import aioice.ice

    if getattr(aioice.ice.get_host_addresses, "_opencvi", False):
        return
    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    with_loopback._opencvi = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = with_loopback


#: datagrams read per readiness event of one UDP socket (asyncio reads one)
MAX_DATAGRAMS_PER_WAKE = 128


def drain_datagram_sockets() -> None:
    """Read every queued datagram when a UDP socket is ready, not one per loop iteration.

    asyncio's selector datagram transport reads ONE datagram each time the loop finds the
    socket readable. A call's socket receives ~50 audio packets a second (and a client's
    ~200 with video); with four calls the loop iterates fewer times a second than that, so
    each socket's kernel queue grew by seconds (~130 KB of mic audio per socket, measured
    with ``ss``): the user's speech reached the pipeline seconds late, and the ICE consent
    checks, which allow 0.5 s for an answer, failed six times in a row, so every transport
    died ~33 s after connecting. Draining the socket at each wake-up keeps the queue at
    zero however many calls share the loop. (uvloop reads in batches too; Daphne's Twisted
    reactor runs on the stdlib loop, so the stdlib transport is what needs it.)"""
    from asyncio import selector_events

    transport = selector_events._SelectorDatagramTransport
    if getattr(transport._read_ready, "_opencvi", False):
        return

    def _read_ready(self) -> None:  # noqa: ANN001 - mirrors CPython's, in a loop
        for _ in range(MAX_DATAGRAMS_PER_WAKE):
            if self._conn_lost:
                return
            try:
                data, addr = self._sock.recvfrom(self.max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - as CPython does
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)

    _read_ready._opencvi = True  # type: ignore[attr-defined]
    transport._read_ready = _read_ready


def rtc_configuration(ice_servers: list[str] | None = None, username: str = "", credential: str = "") -> RTCConfiguration:
    """No ICE servers by default (aiortc would otherwise ask a public STUN server)."""
    servers = []
    for url in ice_servers or []:
        if url.startswith("turn"):
            servers.append(RTCIceServer(urls=url, username=username or None, credential=credential or None))
        else:
            servers.append(RTCIceServer(urls=url))
    return RTCConfiguration(iceServers=servers)


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
            self.send({"message_type": "system", "event_type": "system.error",
                       "properties": {"reason": f"message too large ({len(message)} bytes; "
                                                f"the limit is {MAX_DATA_CHANNEL_MESSAGE})", "code": "message_too_large"}})
            return
        try:
            data = json.loads(message)
        except ValueError:
            self.send({"message_type": "system", "event_type": "system.error",
                       "properties": {"reason": "messages must be JSON objects", "code": "bad_message"}})
            return
        if isinstance(data, dict) and data.get("type") in ("ping", "pong"):
            if data["type"] == "ping":
                self.send({"type": "pong"})
            return
        await self._on_message(data)

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
