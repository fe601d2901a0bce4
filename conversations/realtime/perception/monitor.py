"""``PerceptionMonitor``: one conversation's perception, Django-free.

What the session bridge uses::

    monitor = create_monitor(layers.get("perception"), emit=emit, conversation_id="c123")
    # None when perception_model is "off"
    monitor.offer_frame(rgb, t_ms)        # every sampled camera frame; never blocks
    monitor.offer_screen_frame(rgb, t_ms) # a shared screen (vision model only)
    monitor.set_user_speaking(True)       # sampling: faster while the user speaks
    monitor.add_listener(on_change)       # PerceptionChange callbacks (left, returned, ...)
    text = monitor.visual_context()       # for the next user turn (see context.py)
    monitor.state                         # VisualState snapshot
    text = await monitor.final_analysis() # perception_analysis_queries, answered
    await monitor.close()

Sampling: a frame is analysed only if the previous analysis is done (frames arriving while
busy are dropped and counted) and at most ``speaking_fps`` while the user speaks,
``listening_fps`` while the replica speaks and ``idle_fps`` otherwise (``SamplingPolicy``,
with ``PerceptionConfig``, in options.py). Analysis runs in the engine's worker thread. With a
vision model, a ``VisionLoop`` (vision_loop.py) asks it about the latest frame meanwhile; the
monitor owns its task, and its answers, tool calls and errors come out through the monitor.

Events (typed, from events.py, through ``emit(event)``):

- ``conversation.perception_change`` (ours) ``{change, since, ...details}``: a stable state
  change (user_left, user_returned, user_looked_away, ...; see state.py). ``since`` is the
  epoch time the change began.
- ``conversation.perception_awareness`` (ours) ``{answers: [{query, answer}], scene,
  unanswerable}``: the visual awareness answers, whenever they change.
- ``conversation.perception_tool_call`` ``{name, arguments, frames}``: a visual tool's
  condition began (once per onset); ``frames`` are base64 JPEGs of the frames that showed it.

Privacy: frames live in memory only (the last few, and a handful of keyframes for the final
analysis with a vision model) and are dropped on ``close``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..clock import Clock, SystemClock
from ..engines.base import EngineError, PerceptionSignals
from ..events import ErrorOccurred, Event, PerceptionAwareness, PerceptionChanged, PerceptionToolCall
from .analysis import KEYFRAMES, embedded_analysis, summarise, vision_analysis
from .awareness import EmbeddedAwareness
from .context import format_visual_context
from .options import PerceptionConfig, SamplingPolicy
from .state import PerceptionChange, StateTracker, VisualState
from .tools import ToolWatcher, VisualTool
from .vision import VisionLLM, jpeg_base64
from .vision_loop import VisionLoop

logger = logging.getLogger(__name__)


#: longest side of the frames attached to a perception tool call (data-channel messages are
#: limited to ~60 KB; two frames at this size are ~30-40 KB)
TOOL_FRAME_SIDE = 384
TOOL_FRAMES = 2
#: with a vision model, awareness events at most this often
AWARENESS_MIN_INTERVAL_S = 5.0
#: visual-context calls closer together than this belong to one turn (speculative retries)
SAME_TURN_MS = 3000.0

Emit = Callable[[Event], None]


def create_monitor(layer: Mapping[str, Any] | None, **kwargs: Any) -> PerceptionMonitor | None:
    """A monitor for this perception layer, or None when perception is ``off``."""
    if PerceptionConfig.from_layer(layer).model == "off":
        return None
    return PerceptionMonitor(layer, **kwargs)


class PerceptionMonitor:
    def __init__(self, layers_perception: Mapping[str, Any] | None, *, emit: Emit, clock: Clock | None = None,
                 engine: Any = None, vision_llm: VisionLLM | None = None, conversation_id: str = "",
                 sampling: SamplingPolicy | None = None) -> None:
        self.config = PerceptionConfig.from_layer(layers_perception)
        if self.config.model == "off":
            raise ValueError("perception is off: create no monitor (use create_monitor)")
        self.conversation_id = conversation_id
        self.clock = clock or SystemClock()
        self.sampling = sampling or SamplingPolicy()
        self._emit_fn = emit
        if engine is None:
            try:
                from .engine import get_engine

                engine = get_engine()
            except EngineError as exc:
                if self.config.model == "mediapipe":
                    raise
                logger.warning("[%s] embedded perception unavailable (%s): vision model only", conversation_id, exc)
        self.engine = engine
        self._stream = engine.stream() if engine is not None else None
        self.vision = vision_llm
        if self.vision is None and self.config.model == "vision-llm":
            if not self.config.base_url:
                raise ValueError("perception_model vision-llm needs base_url")
            self.vision = VisionLLM(base_url=self.config.base_url, model=self.config.vision_model,
                                    api_key=self.config.api_key or None)
        self.tracker = StateTracker()
        self.awareness = EmbeddedAwareness(self.config.awareness_queries)
        self.tools = ToolWatcher(self.config.tools, self.config.tool_prompt, use_embedded=self.vision is None)
        #: asks the vision model about the latest frames (None without one)
        self.vision_loop = None if self.vision is None else VisionLoop(
            self.vision, config=self.config, sampling=self.sampling, tools=self.tools, tracker=self.tracker,
            fire=self._fire, on_answers=self._maybe_publish_awareness, on_error=self._failed,
            conversation_id=conversation_id)
        self._listeners: list[Callable[[PerceptionChange], Any]] = []
        self._recent: deque[tuple[float, np.ndarray]] = deque(maxlen=3)
        self._keyframes: list[tuple[float, np.ndarray]] = []
        self._keyframe_every_ms = 10_000.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._vision_task: asyncio.Task[Any] | None = None
        self._busy = False
        self._closed = False
        self._user_speaking = False
        self._replica_speaking = False
        self._last_sample_ms: float | None = None
        self._context_window_start = float("-inf")
        self._context_mark = float("-inf")
        self._last_context_ms: float | None = None
        self._last_awareness: list[tuple[str, str]] | None = None
        self._last_awareness_at = float("-inf")
        self._error_reported = False
        # counters (stats)
        self.frames_offered = 0
        self.frames_analysed = 0
        self.frames_dropped_busy = 0
        self.frames_skipped = 0
        self.errors = 0
        self.analysis_ms: deque[float] = deque(maxlen=500)

    # ------------------------------------------------------------------ inputs
    def offer_frame(self, rgb: np.ndarray, t_ms: float) -> None:
        """A camera frame (H×W×3 uint8 RGB) at ``t_ms`` (monotonic ms, same scale as the
        clock). Never blocks: sampled, and dropped while an analysis is running."""
        if self._closed:
            return
        self.frames_offered += 1
        if self._busy:
            self.frames_dropped_busy += 1
            return
        if self._last_sample_ms is not None and t_ms - self._last_sample_ms < self.interval_ms - 1.0:
            self.frames_skipped += 1
            return
        loop = asyncio.get_running_loop()
        self._last_sample_ms = t_ms
        self._ensure_vision_loop(loop)
        if self._stream is None:
            self._remember(t_ms, rgb)  # vision model only: keep it for the next question
            return
        self._busy = True
        self._spawn(loop, self._process(rgb, t_ms), "perception.frame")

    def offer_screen_frame(self, rgb: np.ndarray, t_ms: float) -> None:
        """A frame of the user's shared screen: only the latest is kept, for the vision model."""
        if not self._closed and self.vision_loop is not None:
            self.vision_loop.offer_screen_frame(t_ms, rgb)

    def set_user_speaking(self, speaking: bool) -> None:
        self._user_speaking = bool(speaking)

    def set_replica_speaking(self, speaking: bool) -> None:
        self._replica_speaking = bool(speaking)

    def add_listener(self, callback: Callable[[PerceptionChange], Any]) -> None:
        """``callback(change)`` on the event loop for every state change (must not block)."""
        self._listeners.append(callback)

    @property
    def interval_ms(self) -> float:
        return self.sampling.interval_ms(user_speaking=self._user_speaking, replica_speaking=self._replica_speaking)

    # ------------------------------------------------------------------ outputs
    @property
    def state(self) -> VisualState:
        return self.tracker.state

    def answers(self) -> list[tuple[str, str]]:
        """The current awareness answers: the vision model's, else the embedded engine's."""
        if self.vision_loop is not None:
            return list(self.vision_loop.answers)
        return self.awareness.answers(self.tracker.state)

    @property
    def scene(self) -> str:
        """The vision model's latest description of the scene ("" without one)."""
        return self.vision_loop.scene if self.vision_loop is not None else ""

    @property
    def unanswerable_queries(self) -> list[str]:
        """Awareness queries that will never be answered (embedded engine only)."""
        return [] if self.vision is not None else self.awareness.unanswerable

    def visual_context(self) -> str:
        """The visual context for the user turn being answered now (context.py's format):
        what is seen now and what changed since the previous turn."""
        now_ms = 1000.0 * self.clock.monotonic()
        if self._last_context_ms is None or now_ms - self._last_context_ms > SAME_TURN_MS:
            # a new turn: its changes start where the previous turn's context was taken
            self._context_window_start = self._context_mark
            self._context_mark = self.tracker.state.t_ms if self.tracker.state.frames else now_ms
        self._last_context_ms = now_ms
        changes = self.tracker.changes_since(self._context_window_start)
        return format_visual_context(self.tracker.state, changes, now_ms, answers=self.answers(),
                                     scene=self.scene)

    def absent_for_s(self) -> float:
        """Seconds since the user left the frame (0 while present or never seen)."""
        st = self.tracker.state
        if st.present is not False or st.absent_since_ms is None:
            return 0.0
        return max(0.0, self.clock.monotonic() - st.absent_since_ms / 1000.0)

    @property
    def stats(self) -> dict[str, Any]:
        ms = sorted(self.analysis_ms)

        def pct(p: float) -> float | None:
            return round(ms[min(len(ms) - 1, int(p * len(ms)))], 2) if ms else None

        return {"frames_offered": self.frames_offered, "frames_analysed": self.frames_analysed,
                "frames_dropped_busy": self.frames_dropped_busy, "frames_skipped": self.frames_skipped,
                "errors": self.errors, "ms_p50": pct(0.5), "ms_p95": pct(0.95),
                "vision_requests": self.vision.requests if self.vision else 0,
                "tool_calls": len(self.tools.fired)}

    async def final_analysis(self) -> str:
        """``perception_analysis_queries`` answered (with the call's summary first); empty
        if no frame was ever analysed."""
        stats = self.tracker.stats
        queries = list(self.config.analysis_queries)
        vision = self.vision_loop
        if vision is not None and (self._keyframes or self._recent):
            frames = [f for _, f in self._keyframes] or [f for _, f in self._recent]
            if self._recent and (not self._keyframes or self._keyframes[-1][0] < self._recent[-1][0]):
                frames = (frames + [self._recent[-1][1]])[-KEYFRAMES:]
            return await vision_analysis(vision.client, queries, stats, frames, list(vision.observations))
        if stats.frames == 0:
            return ""
        return embedded_analysis(queries, stats) if queries else summarise(stats)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the frames already accepted are analysed (tests, benchmarks)."""
        pending = [t for t in self._tasks if not t.done() and t is not self._vision_task]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout)

    async def close(self) -> None:
        """Stop analysing, cancel the vision loop, forget every frame."""
        if self._closed:
            return
        self._closed = True
        if self.vision_loop is not None:
            self.vision_loop.stop()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self.vision is not None:
            try:
                await self.vision.aclose()
            except Exception:  # noqa: BLE001 - closing a pool must not break the shutdown
                logger.debug("closing the vision client failed", exc_info=True)
        self._recent.clear()
        self._keyframes.clear()
        logger.info("[%s] perception closed: %s", self.conversation_id, json.dumps(self.stats))

    def owned_tasks(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    # ------------------------------------------------------------------ internals
    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any, name: str) -> asyncio.Task[Any]:
        task = loop.create_task(coro, name=f"{self.conversation_id}.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, event: Event) -> None:
        try:
            self._emit_fn(event)
        except Exception:  # noqa: BLE001 - a broken sink must not stop perception
            logger.exception("[%s] perception event sink failed on %s", self.conversation_id, event.name)

    def _failed(self, error: ErrorOccurred) -> None:
        """Count a failure; the call's first (a frame's or the vision model's) is reported."""
        self.errors += 1
        if not self._error_reported:
            self._error_reported = True
            self._emit(error)

    def _remember(self, t_ms: float, rgb: np.ndarray) -> None:
        self._recent.append((t_ms, rgb))
        if self.vision_loop is None:
            return  # the next question and the keyframes are for a vision model only
        self.vision_loop.offer_frame(t_ms, rgb)
        if not self._keyframes or t_ms - self._keyframes[-1][0] >= self._keyframe_every_ms:
            self._keyframes.append((t_ms, rgb))
            if len(self._keyframes) > 2 * KEYFRAMES:
                # keep them spread over the call: drop every other one, double the spacing
                self._keyframes = self._keyframes[::2]
                self._keyframe_every_ms *= 2

    async def _process(self, rgb: np.ndarray, t_ms: float) -> None:
        try:
            try:
                sig: PerceptionSignals = await self._stream.analyse(rgb, t_ms=t_ms)
            finally:
                self._busy = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop perception
            logger.warning("[%s] perception failed on a frame: %s", self.conversation_id, exc)
            self._failed(ErrorOccurred(reason=f"perception failed: {exc}", engine="perception",
                                       code="perception_error"))
            return
        if self._closed:
            return
        self.frames_analysed += 1
        self.analysis_ms.append(sig.analysis_ms)
        self._remember(t_ms, rgb)
        changes = self.tracker.update(sig)
        for change in changes:
            self._publish_change(change)
        for tool, arguments in self.tools.embedded_update(self.tracker.state, changes, t_ms):
            await self._fire(tool, arguments, [f for _, f in list(self._recent)[-TOOL_FRAMES:]])
        if self.vision is None:
            self._maybe_publish_awareness()

    def _publish_change(self, change: PerceptionChange) -> None:
        now_ms = 1000.0 * self.clock.monotonic()
        since = self.clock.time() - max(0.0, now_ms - change.t_ms) / 1000.0
        logger.info("[%s] perception: %s", self.conversation_id, change.kind)
        self._emit(PerceptionChanged(change=change.kind, since=round(since, 3), details=dict(change.details)))
        for callback in list(self._listeners):
            try:
                callback(change)
            except Exception:  # noqa: BLE001
                logger.exception("[%s] perception listener failed", self.conversation_id)

    def _maybe_publish_awareness(self) -> None:
        if not self.config.awareness_queries:
            return
        answers = self.answers()
        if answers == self._last_awareness:
            return
        now = self.clock.monotonic()
        if self.vision is not None and now - self._last_awareness_at < AWARENESS_MIN_INTERVAL_S:
            return  # a vision model rewords its answers every second: report them less often
        self._last_awareness, self._last_awareness_at = answers, now
        self._emit(PerceptionAwareness(answers=[{"query": q, "answer": a} for q, a in answers], scene=self.scene,
                                       unanswerable=self.unanswerable_queries))

    async def _fire(self, tool: VisualTool, arguments: str, frames: Sequence[np.ndarray]) -> None:
        try:
            encoded = await asyncio.to_thread(
                lambda: [jpeg_base64(f, max_side=TOOL_FRAME_SIDE, quality=70) for f in frames])
        except Exception:  # noqa: BLE001 - the call still goes out, without pictures
            logger.exception("[%s] could not encode frames for %s", self.conversation_id, tool.name)
            encoded = []
        logger.info("[%s] perception tool call: %s %s", self.conversation_id, tool.name, arguments)
        self._emit(PerceptionToolCall(tool_name=tool.name, arguments=arguments, frames=encoded))

    # ------------------------------------------------------------------ vision model
    def _ensure_vision_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.vision_loop is not None and self._vision_task is None:
            self._vision_task = self._spawn(loop, self.vision_loop.run(), "perception.vision")
