"""``ConversationSession``: the one bridge between Django and the realtime package, for one call.

It only wires parts: the frozen configuration and engines (``conversations.live.config``), the
pipeline, the participants' peer connections, the event sink that stores what happens
(``conversations.live.sink``, called from one writer task so order holds), the perception policy
(``conversations.live.perception``), the recording (``conversations.live.recording``), and the
call's timers and shutdown reasons.
One session per live conversation per server process; ``conversations.live.registry`` opens,
finds and counts them.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from conversations.groups import session_group
from conversations.live import supervisor
from conversations.live.config import SessionConfig, build_renderer, pipeline_for
from conversations.live.perception import PerceptionPolicy, create_monitor
from conversations.live.recording import SessionRecording
from conversations.live.registry import JoinRefused
from conversations.live.sink import EventStore
from conversations.realtime.agent import ConversationPipeline
from conversations.realtime.events import INTERNAL, ErrorOccurred, Event, ReplicaJoined, UtteranceStreaming
from conversations.realtime.frontdoor import build_engines
from conversations.realtime.protocol import ProtocolError, to_wire
from conversations.realtime.ice import rtc_configuration
from conversations.realtime.media import MediaPump
from conversations.realtime.peer import PeerSession
from knowledge.retrieval import load_knowledge
from cvi_site.logging import conversation_id_var

logger = logging.getLogger(__name__)

ClientSend = Callable[[dict[str, Any]], Awaitable[None]]

#: what clients never receive
NOT_SENT_TO_CLIENTS = {"metrics", INTERNAL}


@dataclass(eq=False)
class Participant:
    send_ws: ClientSend
    peer: PeerSession | None = None
    joined_at: float = field(default_factory=time.monotonic)


class ConversationSession:
    def __init__(self, config: SessionConfig, *, on_ended: Callable[[ConversationSession], Any] | None = None) -> None:
        self.config = config
        self._on_ended = on_ended
        self.store = EventStore(config.conversation_id)
        self.id = config.conversation_id
        self.pipeline: ConversationPipeline | None = None
        self.pump: MediaPump | None = None
        self.participants: set[Participant] = set()
        self._events: asyncio.Queue[Event | asyncio.Event | None] = asyncio.Queue(maxsize=5000)
        self._tasks: set[asyncio.Task] = set()
        self._ended = asyncio.Event()
        self._end_done = asyncio.Event()  # set once end() has stored and released everything
        self._end_lock = asyncio.Lock()
        self.end_reason = ""
        #: when media first flowed (None before), and since when nobody is here (None while someone is)
        self.started_monotonic: float | None = None
        self.left_at: float | None = time.monotonic()
        self._replica_joined = False
        self.channel_name = ""
        self.perception = None  # PerceptionMonitor when the PAL's perception layer is on (set in open)
        self.perception_policy: PerceptionPolicy | None = None
        self.recording: SessionRecording | None = None  # with properties.enable_recording (set in open)
        #: where this server is reached, for the links the call emits (never a participant's Host)
        self.base_url = config.base_url

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        conversation_id_var.set(self.id)
        engines = await asyncio.to_thread(build_engines, self.config.pipeline)
        renderer = await asyncio.to_thread(build_renderer, self.config)
        self.perception = await asyncio.to_thread(create_monitor, self.config, self._emit_perception, self.id)
        if self.perception is not None:
            self.perception_policy = PerceptionPolicy(self.perception, spawn=self.spawn, ended=lambda: self.ended)
        knowledge = await asyncio.to_thread(load_knowledge, self.config.knowledge) if self.config.knowledge else None
        self.pipeline = pipeline_for(
            self.config, engines, event_sink=self._on_event, renderer=renderer,
            knowledge_provider=knowledge.retrieve if knowledge is not None else None,
            visual_context_provider=self.perception.visual_context if self.perception is not None else None,
        )
        if self.perception_policy is not None:
            self.perception_policy.attach(self.pipeline)
        pipeline = self.pipeline
        self.pump = MediaPump(pipeline.read_audio, pipeline.video_frame if renderer else None,
                              speaking=lambda: pipeline.output.replica_speaking,
                              audio_only=self.config.audio_only or renderer is None)
        if self.config.enable_recording:
            self.recording = SessionRecording(
                self.id, None if self.config.audio_only or renderer is None else (renderer.width, renderer.height),
                store=self.store, base_url=self.base_url, on_event=pipeline.events.emit)
            self.pump.recorder = self.recording.recorder
        self.spawn(self._writer(), "writer")
        self.spawn(supervisor.watch_timers(self), "timers")
        layer = get_channel_layer()
        if layer is not None:
            # The default prefix matters: channels_redis pops one process-wide list for every
            # local channel of that prefix, the one the consumers' channels use too.
            self.channel_name = await layer.new_channel()
            await layer.group_add(session_group(self.id), self.channel_name)
            self.spawn(supervisor.listen(self, layer), "listen")
        if engines.llm is not None:
            # Evaluate the system prompt now (while the page connects and the greeting plays),
            # so the first reply does not pay for it (~1 s for a 130-token prompt on 2 cores).
            self.spawn(self._warm_up(engines.llm), "warm_up")

    def _on_mic_audio(self, participant: Participant, pcm, rate: int, channels: int) -> None:
        self.pipeline.push_audio(pcm, rate, channels=channels)
        if self.recording is not None:
            self.recording.add_user_audio(pcm, rate, channels, source=participant)

    async def _warm_up(self, llm) -> None:
        try:
            await llm.warm_up(self.pipeline.context.messages(), tools=self.config.pipeline.llm.tool_schemas())
        except Exception:  # noqa: BLE001 - an optimisation only; the first turn just takes longer
            logger.warning("LLM warm-up failed", exc_info=True)

    def spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.id}.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def join(self, send_ws: ClientSend) -> Participant:
        if self.ended:
            raise JoinRefused("ended", "this conversation has ended")
        humans = self.config.max_participants - 1 if self.config.max_participants else None
        if humans is not None and len(self.participants) >= humans:
            raise JoinRefused("full", f"this conversation allows {humans} participant(s) besides the face, and they are here")
        participant = Participant(send_ws=send_ws)
        self.participants.add(participant)
        self.left_at = None
        return participant

    async def connect_peer(self, participant: Participant, sdp: str, sdp_type: str = "offer") -> str:
        """Signalling: the participant's offer in, our answer out; media starts flowing."""
        assert self.pipeline is not None and self.pump is not None
        if participant.peer is not None:
            await participant.peer.close()
        peer = PeerSession(
            pump=self.pump,
            on_audio=lambda pcm, rate, channels: self._on_mic_audio(participant, pcm, rate, channels),
            on_message=lambda msg: self.handle_client_message(msg, participant),
            on_closed=lambda p: self._peer_closed(participant, p),
            on_video=self._on_camera_frame,
            # camera frames are decoded only as often as perception may analyse them
            video_sample_fps=self.perception.sampling.max_fps if self.perception is not None else 0.0,
            on_screen=self._on_screen_frame,
            screen_sample_fps=1.0 if self.perception is not None and self.perception.vision is not None else 0.0,
            configuration=rtc_configuration(settings.ICE_SERVERS, settings.TURN_USERNAME, settings.TURN_PASSWORD),
            label=f"{self.id}",
        )
        participant.peer = peer
        answer = await peer.accept_offer(sdp, sdp_type)
        self.spawn(self._on_connected(peer), "connected")
        return answer

    async def _on_connected(self, peer: PeerSession) -> None:
        try:
            await asyncio.wait_for(peer.connected.wait(), timeout=30)
        except asyncio.TimeoutError:
            logger.warning("peer never connected")
            return
        if self.started_monotonic is None:
            self.started_monotonic = time.monotonic()
            await database_sync_to_async(self.store.mark_started)(self.channel_name)
            await self.pipeline.start()
        if not self._replica_joined:
            self._replica_joined = True
            self.pipeline.events.emit(ReplicaJoined(replica_id=self.config.face_id))

    async def _peer_closed(self, participant: Participant, peer: PeerSession) -> None:
        if participant.peer is peer:
            participant.peer = None

    async def leave(self, participant: Participant) -> None:
        self.participants.discard(participant)
        if participant.peer is not None:
            await participant.peer.close()
        if not self.participants and not self.ended:
            self.left_at = time.monotonic()

    async def end(self, reason: str, *, record: bool = True) -> None:
        """Stop everything and (``record``) mark the conversation ended in the database."""
        async with self._end_lock:
            ending_already = self.ended
            if not ending_already:
                self._ended.set()
                self.end_reason = reason
        if ending_already:
            # a second caller returns when the first one is done (the database says ended)
            await self._end_done.wait()
            return
        logger.info("session ending: %s", reason)
        if self.perception_policy is not None and await self._finish_perception():
            # while the clients are still there: they get conversation.perception_analysis
            await self._flush_events(timeout=5)
        for participant in list(self.participants):
            try:
                await participant.send_ws({"type": "ended", "reason": reason})
            except Exception:  # noqa: BLE001 - a gone client must not stop the shutdown
                pass
            if participant.peer is not None:
                await participant.peer.close()
        if self.pump is not None:
            await self.pump.close()
        recording, self.recording = self.recording, None
        if recording is not None:
            await recording.finish()
        if self.pipeline is not None:
            await self.pipeline.close()
            llm = getattr(self.pipeline.engines, "llm", None)
            if llm is not None:
                await llm.aclose()  # a remote endpoint's connections; a no-op for shared models
            tts = getattr(self.pipeline.engines, "tts", None)
            if hasattr(tts, "aclose"):
                await tts.aclose()  # a remote TTS's connections (the embedded one is shared: no aclose)
        if self.perception is not None:
            await self.perception.close()
        await self._events.put(None)  # the writer drains what is queued, then stops
        writer = [t for t in self._tasks if t.get_name().endswith(".writer")]
        if writer:
            await asyncio.wait(writer, timeout=10)
        if record:
            await database_sync_to_async(self.store.end)(reason)
        layer = get_channel_layer()
        if layer is not None and self.channel_name:
            await layer.group_discard(session_group(self.id), self.channel_name)
        current = asyncio.current_task()
        rest = [t for t in self._tasks if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        if self._on_ended is not None:
            self._on_ended(self)
        self._end_done.set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    # ------------------------------------------------------------------ client messages
    async def handle_client_message(self, message: Any, participant: Participant | None = None) -> None:
        """An interactions-protocol message from a client (data channel or WebSocket)."""
        try:
            if not isinstance(message, dict):
                raise ProtocolError("a message must be a JSON object")
            if message.get("conversation_id") not in (None, "", self.id):
                raise ProtocolError("conversation_id does not match this conversation")
            await self.pipeline.handle_client_message(message)
        except ProtocolError as exc:
            error = ErrorOccurred(reason=str(exc), code="bad_message", timestamp=time.time())
            await self._send_to(participant, to_wire(error, self.id))

    async def _send_to(self, participant: Participant | None, event: dict[str, Any]) -> None:
        targets = [participant] if participant is not None else list(self.participants)
        for p in targets:
            if p.peer is not None:
                p.peer.send(event)
            try:
                await p.send_ws({"type": "event", "event": event})
            except Exception:  # noqa: BLE001
                pass

    # ------------------------------------------------------------------ events out
    def _on_event(self, event: Event) -> None:
        """Pipeline event sink (must not block): queue for the writer."""
        if self.perception_policy is not None:
            self.perception_policy.on_pipeline_event(event)
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("event queue full; dropping %s", event.name)

    async def _writer(self) -> None:
        while True:
            event = await self._events.get()
            if event is None:
                return
            if isinstance(event, asyncio.Event):  # a flush marker: everything before it is out
                event.set()
                continue
            try:
                await self._deliver(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the transcript
                logger.exception("could not deliver event %s", event.name)

    async def _deliver(self, event: Event) -> None:
        captions_off = isinstance(event, UtteranceStreaming) and not self.config.closed_captions
        if event.message_type not in NOT_SENT_TO_CLIENTS and not captions_off:
            await self._send_to(None, to_wire(event, self.id))
        await database_sync_to_async(self.store.store_event)(event, self._seconds_from_start())

    def _seconds_from_start(self) -> float:
        if self.started_monotonic is None:
            return 0.0
        return time.monotonic() - self.started_monotonic

    def _on_camera_frame(self, rgb, t_ms: float) -> None:
        if self.perception is not None:
            self.perception.offer_frame(rgb, t_ms)

    def _on_screen_frame(self, rgb, t_ms: float) -> None:
        if self.perception is not None:
            self.perception.offer_screen_frame(rgb, t_ms)

    # ------------------------------------------------------------------ perception
    def _emit_perception(self, event: Event) -> None:
        if self.perception_policy is not None:
            self.perception_policy.emit(event)

    async def _flush_events(self, timeout: float) -> None:
        """Wait until the writer has delivered every event queued so far."""
        if not any(t.get_name().endswith(".writer") and not t.done() for t in self._tasks):
            return
        marker = asyncio.Event()
        try:
            self._events.put_nowait(marker)
            await asyncio.wait_for(marker.wait(), timeout)
        except (asyncio.QueueFull, asyncio.TimeoutError):
            logger.warning("events still queued at the end of the call")

    async def _finish_perception(self) -> bool:
        """The end-of-call perception analysis: sent to clients and stored (with its webhook).
        False when there is none (no camera frame was ever analysed)."""
        analysis = await self.perception_policy.final_analysis()
        if analysis:
            await database_sync_to_async(self.store.store_perception_analysis)(analysis)
        return bool(analysis)
