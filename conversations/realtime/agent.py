"""``ConversationPipeline``: one live conversation's realtime pipeline, Django-free.

What the bridge (``ConversationSession``) and the transport use::

    pipeline = ConversationPipeline(config, engines, conversation_id="c123",
                                    event_sink=on_event, renderer=face_renderer)
    await pipeline.start()                       # speaks custom_greeting, if any
    pipeline.push_audio(pcm, 48_000)             # mic frames as they arrive (never blocks)
    pcm = pipeline.read_audio(960)               # outgoing track, every 20 ms (int16, 48 kHz)
    frame = pipeline.video_frame(t_ms)           # outgoing video, same clock (if a renderer)
    await pipeline.handle_client_message(msg)    # interactions protocol (raises ProtocolError)
    await pipeline.close()                       # releases everything

Chain (full mode)::

    mic -> [noise suppressor: voice_isolation] -> UserTurnProcessor (VAD, turn-taking, STT,
        barge-in, wake gate) -> LLMProcessor (context + streaming LLM; objectives' steering note)
        -> [GuardrailProcessor: the PAL's guardrails] -> TTSProcessor (phrases -> speech;
        emotion tags, pronunciations) -> AudioOutputProcessor (playout, pulled by the
        transport) -> renderer

Beside the chain: ObjectiveRunner (objectives.py: the evaluator after each reply) and
IdleEngagement (idle.py: polled as the transport pulls audio).

In ``echo`` mode the LLM stage is absent and the microphone only drives the
``user.started/stopped_speaking`` events (as in the hosted product, speech neither makes
turns nor interrupts there): the client speaks through ``conversation.echo``.

The pipeline does not own its engines (they are process-wide and shared): a per-session
engine such as a remote ``OpenAILLM`` is closed by whoever made it, after ``close()``.
Typed events (events.py) go to ``event_sink`` synchronously, from the event loop; the sink
must not block (queue them). The latency record of each reply arrives as a
``TurnMetricsReady`` event and through ``on_turn_metrics``; ``turn_metrics`` keeps the recent
ones.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import protocol
from .actions import PipelineActions
from .audio import StreamResampler, to_float32_mono
from .clock import Clock, SystemClock
from .config import PipelineConfig
from .context import ConversationContext, Retrieved
from .engines.base import (
    FaceRenderer,
    LanguageModel,
    NoiseSuppressor,
    NoiseSuppressorStream,
    SpeechToText,
    TextToSpeech,
    TurnModel,
    VoiceActivityDetector,
    VoiceOptions,
)
from .emotion import EMOTION_NOTE
from .events import (Event, EventEmitter, EventSink, RagObservability, TurnMetricsReady, UserStartedSpeaking,
                     Utterance)
from .guardrails import GuardrailChecker, GuardrailProcessor, rules_note
from .objectives import ObjectiveRunner
from .frames import InputAudioFrame
from .metrics import MetricsBook, TurnMetrics
from .output import AudioOutputProcessor
from .processors import FrameProcessor, Pipeline, cancel_and_wait
from .segmenter import SAMPLE_RATE
from .stages import LLMProcessor, TTSProcessor
from .turn_policy import TurnCounter
from .turn_taking import UserTurnProcessor
from .idle import IdleEngagement
from .wake import WakeGate

logger = logging.getLogger(__name__)

#: the mic is treated as silent once no audio arrived for this long (muted tab, DTX)
INPUT_GAP_S = 0.3


@dataclass
class EngineBundle:
    """The engines one session uses (process-wide, shared). ``stt``/``llm`` may be None in
    echo mode. Anything with these attributes will do (e.g. the engine registry's bundle)."""

    vad: VoiceActivityDetector
    tts: TextToSpeech
    stt: SpeechToText | None = None
    llm: LanguageModel | None = None
    #: the end-of-turn model (None: the transcript alone judges the end of a turn)
    turn: TurnModel | None = None
    #: noise suppression of the mic audio (voice_isolation "near"; None: off)
    denoise: NoiseSuppressor | None = None
    #: sentence embeddings (guardrails' prefilter; None: every rule is asked about every message)
    embedder: Any = None


class ConversationPipeline(PipelineActions):
    """One conversation's realtime pipeline. Use from one event loop. Its actions (say, echo,
    respond, interrupt, tool results …) are in actions.py."""

    def __init__(
        self,
        config: PipelineConfig,
        engines: Any,
        *,
        conversation_id: str = "",
        event_sink: EventSink | None = None,
        clock: Clock | None = None,
        renderer: FaceRenderer | None = None,
        output_sample_rate: int = 48_000,
        input_buffer_ms: float = 200.0,
        on_turn_metrics: Callable[[TurnMetrics], None] | None = None,
        visual_context_provider: Callable[[], str] | None = None,
        knowledge_provider: Callable[[str], Retrieved] | None = None,
    ) -> None:
        self.config = config
        self.engines = engines
        self.conversation_id = conversation_id
        self.clock = clock or SystemClock()
        self.renderer = renderer
        self.output_sample_rate = output_sample_rate
        self.echo_mode = config.pipeline_mode == "echo"
        if not self.echo_mode and (engines.stt is None or engines.llm is None):
            raise ValueError("pipeline_mode 'full' needs an STT and an LLM engine")
        self._on_turn_metrics = on_turn_metrics
        self._user_sink = event_sink
        self.events = EventEmitter(conversation_id, self._dispatch_event, self.clock, complete=self._complete_event)
        self.metrics = MetricsBook(self.clock)
        # visual_context_provider (perception): its text is appended to each user turn sent
        # to the LLM and given as ``visual_context`` in the user's conversation.utterance
        #: the PAL's objectives: steering each reply, evaluated after it (None: none)
        self.objectives: ObjectiveRunner | None = None
        if config.objectives is not None and not self.echo_mode:
            self.objectives = ObjectiveRunner(config.objectives, llm=engines.llm, history=lambda: self.context.history,
                                              emit=self.events.emit, spawn=self._spawn)
        self.context = ConversationContext(
            system_prompt="\n\n".join(p for p in (config.system_prompt, rules_note(config.guardrails)) if p),
            context=config.context, conversational_context=config.conversational_context,
            visual_context_provider=visual_context_provider, knowledge_provider=knowledge_provider,
            steering_provider=self.objectives.steering_note if self.objectives is not None else None)
        self._rag_reported: set[int] = set()
        self.turns = TurnCounter()
        self.voice = VoiceOptions(voice=config.tts.voice_id, language=config.tts_language,
                                  speed=config.tts.speed)

        self.output = AudioOutputProcessor(
            sample_rate=output_sample_rate, emitter=self.events, metrics=self.metrics,
            context=self.context, clock=self.clock, renderer=renderer)
        #: wake/sleep phrases (None: every turn is answered)
        self.wake = None if self.echo_mode else WakeGate.for_flow(
            config.flow.wake_phrase, config.flow.sleep_phrase, emitter=self.events)
        self.user = UserTurnProcessor(
            vad=engines.vad, stt=None if self.echo_mode else engines.stt, flow=config.flow,
            emitter=self.events, metrics=self.metrics, playback=self.output, turns=self.turns,
            clock=self.clock, language_code=config.language_code, hotwords=config.stt.hotwords,
            speculative=config.llm.speculative_inference, turns_enabled=not self.echo_mode,
            max_audio_ms=input_buffer_ms, turn_model=getattr(engines, "turn", None), wake=self.wake)
        self.tts = TTSProcessor(tts=engines.tts, voice=self.voice, emitter=self.events,
                                metrics=self.metrics, emotions=config.tts.tts_emotion_control)
        if config.tts.tts_emotion_control and not self.echo_mode:
            self.context.prompt_notes.append(EMOTION_NOTE)
        #: voice_isolation "near": the mic's noise suppressor (per session state)
        self.isolation: NoiseSuppressorStream | None = None
        if config.flow.voice_isolation == "near":
            if getattr(engines, "denoise", None) is None:
                raise ValueError("voice_isolation 'near' needs a noise suppressor engine (EngineBundle.denoise)")
            self.isolation = engines.denoise.stream()
        processors: list[FrameProcessor] = [self.user]
        self.llm: LLMProcessor | None = None
        if not self.echo_mode:
            self.llm = LLMProcessor(llm=engines.llm, context=self.context, config=config.llm,
                                    emitter=self.events, metrics=self.metrics, clock=self.clock)
            processors.append(self.llm)
        #: the PAL's guardrails: each reply is checked before it is spoken (None: none)
        self.guardrails: GuardrailProcessor | None = None
        if config.guardrails and not self.echo_mode:
            self.guardrails = GuardrailProcessor(
                checker=GuardrailChecker(config.guardrails, engines.llm, embedder=getattr(engines, "embedder", None)),
                emit=self.events.emit,
                visual=self._visual_context, replace_reply=self.context.replace_reply)
            processors.append(self.guardrails)
        processors += [self.tts, self.output]
        for p in processors:
            p.on_error = self._on_processor_error
        self.pipeline = Pipeline(processors)
        # where replies made by client messages enter (after the user side)
        self._reply_entry: FrameProcessor = processors[1]
        #: idle_engagement: speaks up after the person's silence (None: off, or echo mode)
        policy = config.flow.idle_policy
        self.idle = None if policy is None or self.llm is None else IdleEngagement(
            policy, clock=self.clock, user=self.user, output=self.output, turns=self.turns, metrics=self.metrics,
            entry=self._reply_entry, spawn=self._spawn, wake=self.wake, conversation_id=conversation_id)
        self._resamplers: dict[tuple[int, int], StreamResampler] = {}
        self._open_echo: dict[str, tuple[int, str]] = {}  # inference_id -> (reply_id, kind)
        self._echo_text: dict[int, list[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_push: float | None = None
        self._started = False
        self._closed = False
        self.dropped_input_ms = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the processors and speak the custom greeting (never interruptible)."""
        if self._started:
            return
        self._started = True
        await self.pipeline.start()
        self._spawn(self._input_watchdog(), "input_watchdog")
        if self.guardrails is not None:  # the rules' subjects, while the greeting plays
            self._spawn(self.guardrails.checker.prepare(), "guardrails")
        if self.config.custom_greeting.strip():
            await self.say(self.config.custom_greeting, kind="greeting", interruptible=False)
        elif self.config.dynamic_greeting and self.llm is not None:
            self._spawn(self._dynamic_greeting(), "dynamic_greeting")

    async def close(self) -> None:
        """Stop everything this pipeline owns: tasks, queues, engine calls in flight."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        self._tasks.clear()
        await cancel_and_wait(tasks)
        await self.pipeline.close()
        self.output.interrupt()
        if self.isolation is not None:
            self.isolation.close()
        logger.info("[%s] pipeline closed", self.conversation_id)

    @property
    def closed(self) -> bool:
        return self._closed

    def owned_tasks(self) -> list[asyncio.Task[Any]]:
        """Every task this pipeline still owns (empty after ``close``)."""
        return [t for t in self._tasks if not t.done()] + [
            t for t in self.pipeline.owned_tasks() if not t.done()]

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.conversation_id}.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ audio in/out
    def push_audio(self, pcm: np.ndarray, sample_rate: int, *, channels: int = 1) -> None:
        """Mic audio as it arrives (e.g. 20 ms at 48 kHz, int16 or float32, mono or
        interleaved). Never blocks; if the pipeline falls behind by more than
        ``input_buffer_ms``, the oldest audio is dropped and counted (``stats``)."""
        if self._closed:
            return
        mono = to_float32_mono(pcm, channels=channels)
        if self.isolation is not None:  # before VAD and STT (voice_isolation)
            mono, sample_rate = self.isolation.process(mono, sample_rate), self.isolation.sample_rate
        if sample_rate != SAMPLE_RATE:
            key = (sample_rate, SAMPLE_RATE)
            rs = self._resamplers.get(key)
            if rs is None:
                rs = self._resamplers[key] = StreamResampler(sample_rate, SAMPLE_RATE)
            mono = rs.process(mono)
        self._last_push = self.clock.monotonic()
        if len(mono):
            self.user.queue_frame_nowait(InputAudioFrame(pcm=mono, arrival=self._last_push))

    def read_audio(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of the replica's voice, int16 mono at
        ``output_sample_rate`` (silence when it is quiet). Call it from the outgoing track at
        its own pace: what it returns counts as played."""
        if self.idle is not None and self._started and not self._closed:
            self.idle.poll()
        return self.output.read_audio(n_samples)

    def video_frame(self, t_ms: float) -> np.ndarray | None:
        """The face for session-clock time ``t_ms`` (None without a renderer)."""
        if self.renderer is None:
            return None
        return self.renderer.next_frame(t_ms)

    async def _input_watchdog(self) -> None:
        """A mic that stops sending (muted, DTX) must not leave a turn hanging: feed
        silence for the gap so the pause can end the turn."""
        while True:
            await asyncio.sleep(0.1)
            last = self._last_push
            if last is None or not self.user.in_segment:
                continue
            gap = self.clock.monotonic() - last
            if gap >= INPUT_GAP_S:
                n = int(gap * SAMPLE_RATE)
                self._last_push = self.clock.monotonic()
                self.user.queue_frame_nowait(InputAudioFrame(
                    pcm=np.zeros(n, np.float32), arrival=self._last_push))

    # ------------------------------------------------------------------ protocol
    async def handle_client_message(self, message: dict[str, Any]) -> None:
        """Apply one interactions-protocol message (shared/API.md; checked in protocol.py).
        Raises ProtocolError."""
        await protocol.handle_client_message(self, message)

    # ------------------------------------------------------------------ state
    @property
    def history(self) -> list[dict[str, Any]]:
        """The LLM history (user turns, what the replica actually said, tools)."""
        return self.context.history

    @property
    def turn_metrics(self) -> list[TurnMetrics]:
        return list(self.metrics.done)

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "input_audio_ms": round(self.user.audio_ms, 1),
            "dropped_input_ms": round(self.user.queue.dropped_audio_ms, 1),
            "pulled_ms": round(self.output.pulled_ms, 1),
            "played_ms": round(1000.0 * self.output.played_samples / self.output_sample_rate, 1),
            "queued_ms": round(self.output.queued_ms, 1),
            "turns": self.user.turns_committed,
            "interruptions": self.user.interruptions,
            "backchannels": self.user.backchannels,
        }

    # ------------------------------------------------------------------ plumbing
    def _visual_context(self, reply_id: int) -> str:
        return self.context.visual_context_for(reply_id) if self.context.visual_context_provider else ""

    def _complete_event(self, event: Event) -> Event:
        """A user's turn carries the visual context its reply was given (perception)."""
        if (isinstance(event, Utterance) and event.role == "user"
                and self.context.visual_context_provider is not None):
            reply_id = self.metrics.reply_for(event.inference_id)
            visual = self.context.visual_context_for(reply_id) if reply_id is not None else ""
            if visual:
                return dataclasses.replace(event, visual_context=visual)
        return event

    def _dispatch_event(self, event: Event) -> None:
        if self.objectives is not None:
            if isinstance(event, UserStartedSpeaking):
                self.objectives.user_speaking()
            elif isinstance(event, Utterance) and event.role != "user":
                self.objectives.reply_done()
        user_turn = isinstance(event, Utterance) and event.role == "user"
        if self._user_sink is not None:
            self._user_sink(event)
        if user_turn and self.context.knowledge_provider is not None:
            self._report_retrieval(event)
        if isinstance(event, TurnMetricsReady) and self._on_turn_metrics is not None:
            try:
                self._on_turn_metrics(event.metrics)
            except Exception:  # noqa: BLE001
                logger.exception("[%s] on_turn_metrics failed", self.conversation_id)

    def _report_retrieval(self, utterance: Utterance) -> None:
        """``conversation.rag.observability``: which passages the user's turn was answered with."""
        reply_id = self.metrics.reply_for(utterance.inference_id)
        if reply_id is None or reply_id in self._rag_reported:
            return
        self._rag_reported.add(reply_id)
        found = self.context.knowledge_for(reply_id, utterance.speech)
        if found is None:
            return
        self.events.emit(RagObservability(strategy=found.strategy, retrieval_ms=round(found.ms, 1),
                                          chunks=list(found.passages), inference_id=utterance.inference_id,
                                          turn_idx=utterance.turn_idx))

    def _on_processor_error(self, processor: FrameProcessor, exc: BaseException, frame: Any) -> None:
        self.events.error(f"internal error in {processor.name}: {type(exc).__name__}",
                          engine=processor.name, code="internal_error", turn_idx=self.turns.value)
