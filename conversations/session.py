"""``ConversationSession``: the one bridge between Django and the realtime package.

It reads a frozen configuration (``SessionConfig``, never a model instance), builds the
pipeline with the process-wide engines and the face renderer, joins participants' peer
connections to it, stores the transcript and events as they happen (through services wrapped
for async, in one writer task so order holds), enforces the call's timers and ends the
conversation with the documented shutdown reasons. One session per live conversation per
server process; ``SESSIONS`` finds it.
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
from conversations.realtime.agent import ConversationPipeline, EngineBundle, ProtocolError
from conversations.realtime.config import PipelineConfig
from conversations.realtime.events import (
    REPLICA_STARTED,
    REPLICA_STOPPED,
    TURN_METRICS,
    USER_STARTED,
    USER_STOPPED,
    UTTERANCE,
    UTTERANCE_STREAMING,
)
from conversations.realtime.transport import MediaPump, PeerSession, rtc_configuration
from cvi_site.logging import conversation_id_var

logger = logging.getLogger(__name__)

ClientSend = Callable[[dict[str, Any]], Awaitable[None]]

# Events stored in the DB as they happen (captions and metrics are not: too many / stored on the turn).
NOT_STORED = {UTTERANCE_STREAMING, TURN_METRICS}
# What clients never receive.
NOT_SENT_TO_CLIENTS = {"metrics"}
PERCEPTION_TOOL_CALL = "conversation.perception_tool_call"
PERCEPTION_ANALYSIS = "conversation.perception_analysis"
#: spoken when the user comes back into view (perception layer: pause_when_absent)
WELCOME_BACK = "Welcome back!"


#: the join refusal code when this server process holds all the calls it can
CAPACITY = "server_at_capacity"


class JoinRefused(Exception):
    """A participant may not join; ``code`` and ``str()`` go to that client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SessionConfig:
    conversation_id: str
    account_id: int
    status: str
    pipeline: PipelineConfig
    face_id: str | None
    face_assets: str | None
    audio_only: bool
    greenscreen: bool
    closed_captions: bool
    require_auth: bool
    meeting_token: str = field(repr=False, default="")
    max_participants: int | None = None
    max_call_duration: float = 3600
    participant_left_timeout: float = 0
    participant_absent_timeout: float = 300
    created_at_epoch: float = 0.0
    callback_url: str = ""
    enable_recording: bool = False


def load_session_config(conversation_id: str) -> SessionConfig | None:
    """Read everything a session needs from the database, once, into frozen data."""
    from conversations.selectors import conversation_get_public
    from faces.services import face_assets_dir

    conv = conversation_get_public(conversation_id=conversation_id)
    if conv is None:
        return None
    snap = conv.pal_snapshot or {}
    props = conv.properties or {}
    greeting = conv.custom_greeting or snap.get("greeting", "")
    pipeline = PipelineConfig.from_layers(
        snap.get("system_prompt", ""),
        snap.get("context", ""),
        snap.get("layers") or {},
        conversational_context=conv.conversational_context,
        custom_greeting=greeting,
        language=props.get("language", "english"),
        pipeline_mode=snap.get("pipeline_mode", "full"),
    )
    assets = None
    if conv.face is not None and conv.face.status == "ready":
        assets = str(face_assets_dir(conv.face))
    return SessionConfig(
        conversation_id=conv.pk,
        account_id=conv.account_id,
        status=conv.status,
        pipeline=pipeline,
        face_id=conv.face_id,
        face_assets=assets,
        audio_only=conv.audio_only,
        greenscreen=bool(props.get("apply_greenscreen")),
        closed_captions=bool(props.get("enable_closed_captions", True)),
        require_auth=conv.require_auth,
        meeting_token=conv.meeting_token,
        max_participants=conv.max_participants,
        max_call_duration=float(props.get("max_call_duration", 3600)),
        participant_left_timeout=float(props.get("participant_left_timeout", 0)),
        participant_absent_timeout=float(props.get("participant_absent_timeout", 300)),
        created_at_epoch=conv.created_at.timestamp(),
        callback_url=conv.callback_url,
        enable_recording=bool(props.get("enable_recording")),
    )


def build_engines(config: PipelineConfig) -> EngineBundle:
    """The engines this PAL asks for: embedded ones are loaded once per process and shared by
    every session; a remote LLM endpoint gets a client of its own. Runs in a thread."""
    from conversations.realtime.engines import registry

    echo = config.pipeline_mode == "echo"
    llm = None
    if not echo:
        llm = registry.get_llm(
            config.llm.model or None, base_url=config.llm.base_url or None, api_key=config.llm.api_key or None,
            model=config.llm.model or None, headers=dict(config.llm.headers), extra_body=dict(config.llm.extra_body),
            default_query=dict(config.llm.default_query),
        )
    return EngineBundle(
        vad=registry.get_vad(),
        tts=registry.get_tts(config.tts.tts_engine or None, api_key=config.tts.api_key, voice_id=config.tts.voice_id,
                             model=config.tts.tts_model_name, base_url=config.tts.base_url,
                             settings={k: v for k, v in config.tts.voice_settings.items() if k != "speed"}),
        stt=None if echo else registry.get_stt(config.stt.stt_engine or None, language=config.language_code,
                                               api_key=config.stt.api_key, base_url=config.stt.base_url),
        llm=llm,
        turn=registry.get_turn_model() if not echo and config.flow.smart_turn else None,
    )


def pipeline_for(config: SessionConfig, engines: EngineBundle, **hooks: Any) -> ConversationPipeline:
    """The pipeline a live call of ``config`` runs, with the live settings (the input buffer
    and everything else are ConversationPipeline's defaults); the benchmarks build theirs here
    too. ``hooks``: event sink, renderer, visual context provider."""
    return ConversationPipeline(config.pipeline, engines, conversation_id=config.conversation_id, **hooks)


def build_renderer(config: SessionConfig):
    if config.audio_only or not config.face_assets:
        return None
    from faces.renderer import create_renderer

    return create_renderer(config.face_assets, greenscreen=config.greenscreen)


@dataclass(eq=False)
class Participant:
    send_ws: ClientSend
    peer: PeerSession | None = None
    joined_at: float = field(default_factory=time.monotonic)


class ConversationSession:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.id = config.conversation_id
        self.pipeline: ConversationPipeline | None = None
        self.pump: MediaPump | None = None
        self.participants: set[Participant] = set()
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=5000)
        self._tasks: set[asyncio.Task] = set()
        self._ended = asyncio.Event()
        self._end_done = asyncio.Event()  # set once end() has stored and released everything
        self._end_lock = asyncio.Lock()
        self.end_reason = ""
        self._started_monotonic: float | None = None
        self._left_at: float | None = time.monotonic()
        self._replica_joined = False
        self._channel_name = ""
        self._metrics: dict[str, dict] = {}
        self._assistant_rows: dict[str, int] = {}
        self.perception = None  # PerceptionMonitor when the PAL's perception layer is on (set in open)
        self._user_away = False
        self.recorder = None  # CallRecorder with properties.enable_recording (set in open)
        #: where this server is reached (from the first participant's request; PUBLIC_URL wins)
        self.base_url = settings.PUBLIC_URL

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        conversation_id_var.set(self.id)
        engines = await asyncio.to_thread(build_engines, self.config.pipeline)
        renderer = await asyncio.to_thread(build_renderer, self.config)
        self.perception = await asyncio.to_thread(self._create_perception)
        self.pipeline = pipeline_for(
            self.config, engines, event_sink=self._on_event, renderer=renderer,
            visual_context_provider=self.perception.visual_context if self.perception is not None else None,
        )
        if self.perception is not None:
            self.perception.add_listener(self._on_perception_change)
        pipeline = self.pipeline
        self.pump = MediaPump(pipeline.read_audio, pipeline.video_frame if renderer else None,
                              speaking=lambda: pipeline.output.replica_speaking,
                              audio_only=self.config.audio_only or renderer is None)
        if self.config.enable_recording:
            self._start_recorder(None if self.config.audio_only or renderer is None else (renderer.width, renderer.height))
        self._spawn(self._writer(), "writer")
        self._spawn(self._timers(), "timers")
        layer = get_channel_layer()
        if layer is not None:
            # The default prefix matters: channels_redis pops one process-wide list for every
            # local channel of that prefix, the one the consumers' channels use too.
            self._channel_name = await layer.new_channel()
            await layer.group_add(session_group(self.id), self._channel_name)
            self._spawn(self._listen(layer), "listen")
        if engines.llm is not None:
            # Evaluate the system prompt now (while the page connects and the greeting plays),
            # so the first reply does not pay for it (~1 s for a 130-token prompt on 2 cores).
            self._spawn(self._warm_up(engines.llm), "warm_up")

    def _start_recorder(self, video_size: tuple[int, int] | None) -> None:
        from conversations.realtime.recorder import CallRecorder
        from conversations.services import recording_path_for

        self.recorder = CallRecorder(recording_path_for(self.id, video=video_size is not None), video_size=video_size)
        self.recorder.start()
        self.pump.recorder = self.recorder

    def _on_mic_audio(self, participant: Participant, pcm, rate: int, channels: int) -> None:
        self.pipeline.push_audio(pcm, rate, channels=channels)
        if self.recorder is not None:
            self.recorder.add_user_audio(pcm, rate, channels, source=participant)

    async def _finish_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        recording = await asyncio.to_thread(recorder.close)
        if recording is None:
            if recorder.error:
                self._on_event({"message_type": "system", "event_type": "system.error", "conversation_id": self.id,
                                "timestamp": time.time(),
                                "properties": {"engine": "recorder", "message": f"the recording failed: {recorder.error}"}})
            return
        logger.info("recording %s: %.1f s, %d bytes", recording.path.name, recording.duration_s, recording.size_bytes)
        try:
            await database_sync_to_async(_store_recording)(self.id, recording, self.base_url or "http://localhost:8000")
        except Exception:  # noqa: BLE001 - the shutdown must go on; the file stays for an operator
            logger.exception("could not store the recording %s", recording.path)

    async def _warm_up(self, llm) -> None:
        try:
            await llm.warm_up(self.pipeline.context.messages(), tools=self.config.pipeline.llm.tool_schemas())
        except Exception:  # noqa: BLE001 - an optimisation only; the first turn just takes longer
            logger.warning("LLM warm-up failed", exc_info=True)

    def _spawn(self, coro, name: str) -> asyncio.Task:
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
        self._left_at = None
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
        self._spawn(self._on_connected(peer), "connected")
        return answer

    async def _on_connected(self, peer: PeerSession) -> None:
        try:
            await asyncio.wait_for(peer.connected.wait(), timeout=30)
        except asyncio.TimeoutError:
            logger.warning("peer never connected")
            return
        if self._started_monotonic is None:
            self._started_monotonic = time.monotonic()
            await database_sync_to_async(_mark_started)(self.id, self._channel_name)
            await self.pipeline.start()
        if not self._replica_joined:
            self._replica_joined = True
            self._on_event({"message_type": "system", "event_type": "system.replica_joined",
                            "conversation_id": self.id, "timestamp": time.time(),
                            "properties": {"replica_id": self.config.face_id}})

    async def _peer_closed(self, participant: Participant, peer: PeerSession) -> None:
        if participant.peer is peer:
            participant.peer = None

    async def leave(self, participant: Participant) -> None:
        self.participants.discard(participant)
        if participant.peer is not None:
            await participant.peer.close()
        if not self.participants and not self.ended:
            self._left_at = time.monotonic()

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
        if self.perception is not None and await self._finish_perception():
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
        await self._finish_recording()
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
            await database_sync_to_async(_end_conversation)(self.id, reason)
        layer = get_channel_layer()
        if layer is not None and self._channel_name:
            await layer.group_discard(session_group(self.id), self._channel_name)
        current = asyncio.current_task()
        rest = [t for t in self._tasks if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        SESSIONS.pop(self.id, None)
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
            error = {"message_type": "system", "event_type": "system.error", "conversation_id": self.id,
                     "timestamp": time.time(), "properties": {"reason": str(exc), "code": "bad_message"}}
            await self._send_to(participant, error)

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
    def _on_event(self, event: dict[str, Any]) -> None:
        """Pipeline event sink (must not block): queue for the writer."""
        if self.perception is not None:
            kind = event.get("event_type")
            if kind in (USER_STARTED, USER_STOPPED):
                self.perception.set_user_speaking(kind == USER_STARTED)
            elif kind in (REPLICA_STARTED, REPLICA_STOPPED):
                self.perception.set_replica_speaking(kind == REPLICA_STARTED)
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("event queue full; dropping %s", event.get("event_type"))

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
                logger.exception("could not deliver event %s", event.get("event_type"))

    async def _deliver(self, event: dict[str, Any]) -> None:
        event_type = event.get("event_type", "")
        if event.get("message_type") not in NOT_SENT_TO_CLIENTS:
            if event_type == UTTERANCE_STREAMING and not self.config.closed_captions:
                pass
            else:
                await self._send_to(None, event)
        await database_sync_to_async(_store_event)(self.id, event, self._seconds_from_start(), self._metrics)

    def _seconds_from_start(self) -> float:
        if self._started_monotonic is None:
            return 0.0
        return time.monotonic() - self._started_monotonic

    def _on_camera_frame(self, rgb, t_ms: float) -> None:
        if self.perception is not None:
            self.perception.offer_frame(rgb, t_ms)

    def _on_screen_frame(self, rgb, t_ms: float) -> None:
        if self.perception is not None:
            self.perception.offer_screen_frame(rgb, t_ms)

    # ------------------------------------------------------------------ perception
    def _create_perception(self):
        """The PAL's perception monitor (runs in a thread: the first one imports MediaPipe).
        None when perception is off, the call is audio-only, or it cannot start (the call
        then goes on without it)."""
        if self.config.audio_only:
            return None
        from conversations.realtime.perception.monitor import create_monitor

        try:
            return create_monitor(self.config.pipeline.layers.get("perception"), emit=self._emit_perception,
                                  conversation_id=self.id)
        except Exception:  # noqa: BLE001 - perception is an extra: never a reason to fail the call
            logger.exception("perception could not start; the call goes on without it")
            return None

    def _emit_perception(self, event_type: str, properties: dict[str, Any]) -> None:
        """Perception events go out with the pipeline's envelope (seq, turn_idx, timestamp)."""
        if self.pipeline is None:
            return
        self.pipeline.events.emit(event_type, properties, turn_idx=self.pipeline.turns.value,
                                  message_type="system" if event_type.startswith("system.") else "conversation")

    def _on_perception_change(self, change) -> None:
        """``pause_when_absent``: a reply stops when the user leaves the frame, and they are
        greeted when they come back."""
        perception, pipeline = self.perception, self.pipeline
        if perception is None or pipeline is None or self.ended or not perception.config.pause_when_absent:
            return
        if change.kind == "user_left":
            self._user_away = True
            if pipeline.output.replica_active:
                self._spawn(pipeline.interrupt(), "perception.pause")
        elif change.kind == "user_returned" and self._user_away:
            self._user_away = False
            if not pipeline.echo_mode and not pipeline.output.replica_active:
                self._spawn(pipeline.say(WELCOME_BACK), "perception.greet")

    async def _flush_events(self, timeout: float) -> None:
        """Wait until the writer has delivered every event queued so far."""
        if not any(t.get_name().endswith(".writer") and not t.done() for t in self._tasks):
            return
        marker = asyncio.Event()
        try:
            self._events.put_nowait(marker)  # type: ignore[arg-type]
            await asyncio.wait_for(marker.wait(), timeout)
        except (asyncio.QueueFull, asyncio.TimeoutError):
            logger.warning("events still queued at the end of the call")

    async def _finish_perception(self) -> bool:
        """The end-of-call perception analysis: sent to clients and stored (with its webhook).
        False when there is none (no camera frame was ever analysed)."""
        try:
            analysis = await asyncio.wait_for(self.perception.final_analysis(), timeout=30)
        except Exception:  # noqa: BLE001 - the call is ending either way
            logger.exception("perception analysis failed")
            return False
        if not analysis:
            return False
        self._emit_perception(PERCEPTION_ANALYSIS, {"analysis": analysis})
        await database_sync_to_async(_store_perception_analysis)(self.id, analysis)
        return True

    # ------------------------------------------------------------------ timers and remote control
    async def _timers(self) -> None:
        from conversations.services import Shutdown

        cfg = self.config
        created_mono = time.monotonic() - max(0.0, time.time() - cfg.created_at_epoch)
        while not self.ended:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if self._started_monotonic is None:
                if now - created_mono > cfg.participant_absent_timeout:
                    self._spawn(self.end(Shutdown.ABSENT_TIMEOUT), "end")
                    return
                continue
            if now - self._started_monotonic > cfg.max_call_duration:
                self._spawn(self.end(Shutdown.MAX_DURATION), "end")
                return
            if self._left_at is not None and now - self._left_at >= cfg.participant_left_timeout:
                self._spawn(self.end(Shutdown.LEFT_TIMEOUT), "end")
                return
            perception = self.perception
            if (perception is not None and perception.config.absent_counts_as_left
                    and perception.state.present is False
                    and perception.absent_for_s() >= cfg.participant_left_timeout):
                # absent_counts_as_left: no face (nobody in view) counts as having left
                self._spawn(self.end(Shutdown.LEFT_TIMEOUT), "end")
                return

    async def _listen(self, layer) -> None:
        """REST ``end`` (from any server process) arrives here over the channel layer."""
        while not self.ended:
            message = await layer.receive(self._channel_name)
            if message.get("type") == "session.end":
                # The REST side already recorded the end; just stop the live parts.
                self._spawn(self.end(message.get("reason", ""), record=False), "end")
                return
            if message.get("type") == "session.message":
                await self.handle_client_message(message.get("message"))


# ---------------------------------------------------------------------- DB side (sync)
def _mark_started(conversation_id: str, channel: str) -> None:
    from conversations.services import conversation_mark_started

    conversation_mark_started(conversation_id=conversation_id, session_channel=channel)


def _end_conversation(conversation_id: str, reason: str) -> None:
    from conversations.models import Conversation
    from conversations.services import conversation_end

    conv = Conversation.objects.filter(pk=conversation_id).first()
    if conv is not None:
        conversation_end(conversation=conv, reason=reason)


def _store_recording(conversation_id: str, recording, base_url: str) -> None:
    from conversations.services import conversation_set_recording

    conversation_set_recording(conversation_id=conversation_id, path=recording.path,
                               duration_s=recording.duration_s, base_url=base_url)


def _store_perception_analysis(conversation_id: str, analysis: str) -> None:
    from conversations.services import conversation_set_perception_analysis

    conversation_set_perception_analysis(conversation_id=conversation_id, analysis=analysis)


def _store_event(conversation_id: str, event: dict[str, Any], seconds: float, metrics: dict) -> None:
    from conversations import services
    from conversations.models import Conversation

    event_type = event.get("event_type", "")
    props = event.get("properties") or {}
    if event_type == PERCEPTION_TOOL_CALL:
        # camera frames are never stored (no recording): keep how many there were
        props = {**{k: v for k, v in props.items() if k != "frames"}, "frames_count": len(props.get("frames") or ())}
    inference_id = event.get("inference_id") or ""
    if event_type == TURN_METRICS:
        record = dict(props)
        metrics[inference_id] = record
        services.utterance_set_latency(conversation_id=conversation_id, inference_id=inference_id, latency=record)
        return
    if event_type == REPLICA_STOPPED:
        # The replica's utterance follows with the same inference id; keep how it ended.
        metrics[("stopped", inference_id)] = props
    if event_type == UTTERANCE and (props.get("speech") or "").strip():
        role = "assistant" if props.get("role") in ("replica", "assistant") else "user"
        stopped = metrics.pop(("stopped", inference_id), {}) if role == "assistant" else {}
        duration = stopped.get("duration")
        services.utterance_record(
            conversation_id=conversation_id, role=role, content=props.get("speech", "") or "",
            inference_id=inference_id, turn_idx=int(event.get("turn_idx") or 0),
            seconds_from_start=max(0.0, seconds - (duration or 0.0)), duration=duration,
            interrupted=bool(stopped.get("interrupted")), visual_context=props.get("visual_context") or "",
            latency=metrics.get(inference_id, {}) if role == "assistant" else {},
        )
    if event_type in NOT_STORED:
        return
    conv = Conversation.objects.filter(pk=conversation_id).first()
    if conv is None:
        return
    services.event_record(
        conversation=conv, message_type=event.get("message_type", "conversation"), event_type=event_type,
        properties={**props, **({"inference_id": inference_id} if inference_id else {})},
    )


# ---------------------------------------------------------------------- registry of live sessions
SESSIONS: dict[str, ConversationSession] = {}
_opening: dict[str, asyncio.Lock] = {}
#: sessions being opened right now (counted against the process's limit with the live ones)
_reserved: set[str] = set()


def live_session_count() -> int:
    """Live calls this process holds (and is opening): what admission control counts."""
    return sum(1 for s in SESSIONS.values() if not s.ended) + len(_reserved)


def _admit() -> None:
    """Refuse a new call when this process already holds as many as it can at its latency goal
    (``MAX_LIVE_CALLS_PER_PROCESS``); the account's own concurrency limit applies on top."""
    limit = settings.MAX_LIVE_CALLS_PER_PROCESS
    if live_session_count() >= limit:
        raise JoinRefused(CAPACITY, f"this server is holding as many live calls as it can ({limit}); "
                                    "please try again in a few minutes")


async def session_for(conversation_id: str) -> ConversationSession:
    """The live session of a conversation in this process, opened on first join."""
    lock = _opening.setdefault(conversation_id, asyncio.Lock())
    async with lock:
        session = SESSIONS.get(conversation_id)
        if session is not None and not session.ended:
            return session
        config = await database_sync_to_async(load_session_config)(conversation_id)
        if config is None:
            raise JoinRefused("not_found", "no such conversation")
        if config.status != "active":
            raise JoinRefused("ended", "this conversation has ended")
        try:
            _admit()
        except JoinRefused as exc:
            # Not left half-alive: the conversation ends with the reason (its webhook and the
            # account's concurrency count follow), and nothing was opened for it.
            logger.warning("join of %s refused: %s", conversation_id, exc)
            await database_sync_to_async(_refuse_conversation)(conversation_id, exc.code, str(exc))
            raise
        _reserved.add(conversation_id)
        try:
            session = ConversationSession(config)
            try:
                await session.open()
            except Exception as exc:
                logger.exception("session %s failed to start", conversation_id)
                from conversations.services import Shutdown

                await session.end(Shutdown.STARTUP_ERROR)
                raise JoinRefused("startup_failed", f"the conversation could not start: {exc}") from exc
            SESSIONS[conversation_id] = session
        finally:
            _reserved.discard(conversation_id)
        return session


def _refuse_conversation(conversation_id: str, code: str, reason: str) -> None:
    from conversations import services
    from conversations.models import Conversation

    conv = Conversation.objects.filter(pk=conversation_id).first()
    if conv is None:
        return
    services.event_record(conversation=conv, message_type="system", event_type="system.error",
                          properties={"code": code, "reason": reason})
    services.conversation_end(conversation=conv, reason=services.Shutdown.SERVER_AT_CAPACITY)
