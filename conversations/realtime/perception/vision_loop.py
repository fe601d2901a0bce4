"""``VisionLoop``: the vision model's side of a conversation's perception
(``perception_model: vision-llm``), owned by :class:`~.monitor.PerceptionMonitor`.

Every ``SamplingPolicy.vision_interval_s`` (and never before the previous answer is in) it asks
the model about the newest camera frame it was given, if that frame is new, with the user's
shared screen when one came in the last five seconds: the awareness queries and the visual
tools' conditions in one prompt (awareness.py). It keeps the answers, the scene and a log of
observations (for the end-of-call analysis). For each answer, tool onsets go to ``fire`` first,
then ``on_answers`` is called. A failed request is logged and handed to ``on_error`` as an
``ErrorOccurred``; the loop keeps asking, waiting longer each time (up to 10 s more).

The owner runs :meth:`run` as a task of its own, cancels it on close and calls :meth:`stop`,
which forgets the frames.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from ..events import ErrorOccurred
from .awareness import VISION_SYSTEM, build_vision_prompt, parse_vision_answer
from .options import PerceptionConfig, SamplingPolicy
from .state import StateTracker
from .tools import ToolWatcher, VisualTool
from .vision import VisionLLM

logger = logging.getLogger(__name__)

#: ``fire(tool, arguments, frames)``: a visual tool's condition began
Fire = Callable[[VisualTool, str, Sequence[np.ndarray]], Awaitable[None]]


class VisionLoop:
    def __init__(self, client: VisionLLM, *, config: PerceptionConfig, sampling: SamplingPolicy,
                 tools: ToolWatcher, tracker: StateTracker, fire: Fire, on_answers: Callable[[], None],
                 on_error: Callable[[ErrorOccurred], None], conversation_id: str = "") -> None:
        self.client = client
        self.config = config
        self.sampling = sampling
        self.tools = tools
        self.tracker = tracker
        self.conversation_id = conversation_id
        self._fire = fire
        self._on_answers = on_answers
        self._on_error = on_error
        #: the latest answers to the awareness queries, (query, answer) for those answered
        self.answers: list[tuple[str, str]] = []
        #: the model's latest description of the scene
        self.scene = ""
        #: its descriptions over the call, for the end-of-call analysis
        self.observations: deque[str] = deque(maxlen=40)
        self._latest: tuple[float, np.ndarray] | None = None
        self._screen: tuple[float, np.ndarray] | None = None
        self._asked_t: float | None = None
        self._stopped = False

    def offer_frame(self, t_ms: float, rgb: np.ndarray) -> None:
        """The newest camera frame: the next question is about it."""
        self._latest = (t_ms, rgb)

    def offer_screen_frame(self, t_ms: float, rgb: np.ndarray) -> None:
        """The newest frame of the user's shared screen, sent along while it is recent."""
        self._screen = (t_ms, rgb)

    def stop(self) -> None:
        """Ask nothing more and forget the frames (the owner cancels the task running :meth:`run`)."""
        self._stopped = True
        self._latest = None
        self._screen = None

    async def run(self) -> None:
        backoff = 0.0
        while not self._stopped:
            await asyncio.sleep(self.sampling.vision_interval_s + backoff)
            if self._latest is None:
                continue
            t_ms, frame = self._latest
            if self._asked_t is not None and t_ms <= self._asked_t:
                continue  # nothing new since the last question
            self._asked_t = t_ms
            try:
                await self._ask(t_ms, frame)
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying, slower
                backoff = min(10.0, backoff * 2 or 1.0)
                logger.warning("[%s] vision model failed: %s", self.conversation_id, exc)
                self._on_error(ErrorOccurred(reason=str(exc), engine="vision-llm",
                                             code=getattr(exc, "code", "perception_error")))

    async def _ask(self, t_ms: float, frame: np.ndarray) -> None:
        queries = list(self.config.awareness_queries)
        conditions = self.tools.vision_conditions()
        frames = [frame]
        shared = self._screen
        screen = shared is not None and t_ms - shared[0] < 5000
        if shared is not None and screen:
            frames.append(shared[1])
        prompt = build_vision_prompt(queries, conditions, tool_prompt=self.config.tool_prompt,
                                     n_images=len(frames), screen=screen)
        started = time.perf_counter()
        async with asyncio.timeout(30):
            text = await self.client.ask(prompt, frames, system=VISION_SYSTEM,
                                         max_tokens=40 + 24 * len(queries) + 16 * len(conditions))
        logger.debug("[%s] vision answer in %.0f ms", self.conversation_id, 1000 * (time.perf_counter() - started))
        if self._stopped:
            return
        parsed = parse_vision_answer(text, len(queries), len(conditions))
        self.scene = parsed.scene
        self.answers = [(q, a) for q, a in zip(queries, parsed.answers) if a]
        if parsed.scene:
            self.observations.append(parsed.scene)
        for tool, arguments in self.tools.vision_update(parsed.conditions, self.tracker.state, t_ms,
                                                        scene=parsed.scene):
            await self._fire(tool, arguments, [frame])
        self._on_answers()
