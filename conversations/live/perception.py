"""A live call's perception policy: the PAL's perception monitor, and what the call does with it.

- The monitor reads the camera (and a shared screen) and gives the LLM its visual context.
- ``pause_when_absent``: a reply stops when the user leaves the frame; they are greeted when
  they come back.
- ``absent_counts_as_left``: no face in view counts towards ``participant_left_timeout``.
- At the end of the call, the perception analysis is sent to the clients and stored.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from conversations.realtime.events import (Event, PerceptionAnalysis, ReplicaStartedSpeaking, ReplicaStoppedSpeaking,
                                           UserStartedSpeaking, UserStoppedSpeaking)

logger = logging.getLogger(__name__)
#: spoken when the user comes back into view (perception layer: pause_when_absent)
WELCOME_BACK = "Welcome back!"


def create_monitor(config: Any, emit: Callable[[Event], None], conversation_id: str):  # noqa: ANN001, ANN201, ANN401
    """The PAL's perception monitor (call it in a thread: the first one imports MediaPipe).
    None when perception is off, the call is audio-only, or it cannot start (the call then goes
    on without it)."""
    if config.audio_only:
        return None
    from conversations.realtime.perception.monitor import create_monitor as create

    try:
        return create(config.pipeline.layers.get("perception"), emit=emit, conversation_id=conversation_id)
    except Exception:  # noqa: BLE001 - perception is an extra: never a reason to fail the call
        logger.exception("perception could not start; the call goes on without it")
        return None


class PerceptionPolicy:
    """Wires one call's monitor to its pipeline. ``spawn`` runs a coroutine as a task of the
    session; ``ended`` says whether the call is over."""

    def __init__(self, monitor: Any, *, spawn: Callable[[Any, str], Any], ended: Callable[[], bool]) -> None:  # noqa: ANN401
        self.monitor = monitor
        self.pipeline = None
        self._spawn = spawn
        self._ended = ended
        self._user_away = False
        monitor.add_listener(self._on_change)

    def attach(self, pipeline: Any) -> None:  # noqa: ANN401
        self.pipeline = pipeline

    def emit(self, event: Event) -> None:
        """Perception events go out through the pipeline's emitter, in the current turn."""
        if self.pipeline is None:
            return
        self.pipeline.events.emit(dataclasses.replace(event, turn_idx=self.pipeline.turns.value))

    def on_pipeline_event(self, event: Event) -> None:
        if isinstance(event, (UserStartedSpeaking, UserStoppedSpeaking)):
            self.monitor.set_user_speaking(isinstance(event, UserStartedSpeaking))
        elif isinstance(event, (ReplicaStartedSpeaking, ReplicaStoppedSpeaking)):
            self.monitor.set_replica_speaking(isinstance(event, ReplicaStartedSpeaking))

    def _on_change(self, change: Any) -> None:  # noqa: ANN401
        monitor, pipeline = self.monitor, self.pipeline
        if pipeline is None or self._ended() or not monitor.config.pause_when_absent:
            return
        if change.kind == "user_left":
            self._user_away = True
            if pipeline.output.replica_active:
                self._spawn(pipeline.interrupt(), "perception.pause")
        elif change.kind == "user_returned" and self._user_away:
            self._user_away = False
            if not pipeline.echo_mode and not pipeline.output.replica_active:
                self._spawn(pipeline.say(WELCOME_BACK), "perception.greet")

    def counts_as_left(self, timeout_s: float) -> bool:
        """``absent_counts_as_left``: nobody has been in view for ``timeout_s``."""
        monitor = self.monitor
        return bool(monitor.config.absent_counts_as_left and monitor.state.present is False
                    and monitor.absent_for_s() >= timeout_s)

    async def final_analysis(self) -> str:
        """The end-of-call analysis, emitted to the clients ("" when no frame was ever analysed)."""
        try:
            analysis = await asyncio.wait_for(self.monitor.final_analysis(), timeout=30)
        except Exception:  # noqa: BLE001 - the call is ending either way
            logger.exception("perception analysis failed")
            return ""
        if analysis:
            self.emit(PerceptionAnalysis(analysis=analysis))
        return analysis or ""
