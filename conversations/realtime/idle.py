"""Idle engagement (``conversational_flow.idle_engagement``): the agent speaks up when the person
stays silent.

The silence counts while nobody speaks: the person is not speaking and no turn of theirs is
being settled, no reply is being thought or played, and the agent is awake (a PAL with a wake
phrase that is waiting for it says nothing of its own accord). Once it has lasted the level's
``after_s`` (``levels.IDLE_ENGAGEMENT``) the agent speaks up, at most ``max_nudges`` times in a
row; a turn of the person's starts a new run.

What it says is written by the LLM, which sees the conversation so far plus a user-role note
saying how long the person has been quiet (``NUDGE_NOTE``): the nudge fits the conversation
and is not a fixed line. The note and the nudge enter the history like a turn and its reply,
so the LLM later knows why it spoke; a nudge goes through the same stages as any reply
(guardrails, voice, face, events, ``conversation.turn_metrics`` with ``source: "idle"``), and the
person can interrupt it as any reply. If they start speaking before it is heard, their turn
and the note are answered together, like two quick turns.

The check runs on every pull of the outgoing audio (``ConversationPipeline.read_audio``, every
20 ms of the transport's clock), on the pipeline's clock, so a test drives it with the same
ticks that drive the audio. The nudge is a task the pipeline owns: ``close()`` cancels it, and
a closed pipeline is not polled.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from .clock import Clock
from .levels import IdlePolicy
from .metrics import MetricsBook
from .frames import LLMRunFrame, TurnCommitFrame
from .output import AudioOutputProcessor
from .processors import FrameProcessor
from .turn_policy import TurnCounter
from .turn_taking import UserTurnProcessor
from .wake import WakeGate

logger = logging.getLogger(__name__)

#: what the LLM is told when the person has been quiet (a user-role message; ``{seconds}``). Worded
#: in the person's voice: told about "the person" in the third person, the 0.5B embedded model
#: answered "The person is still there." or refused; asked this way it asked about the topic of
#: the conversation ("What are your plans for the trip to Italy?")
NUDGE_NOTE = "(I have said nothing for {seconds} seconds. Ask me one short, friendly question that keeps our " \
             "conversation going.)"

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class IdleEngagement:
    """Watches for the person's silence and makes the agent speak up. Event loop only."""

    def __init__(self, policy: IdlePolicy, *, clock: Clock, user: UserTurnProcessor,
                 output: AudioOutputProcessor, turns: TurnCounter, metrics: MetricsBook,
                 entry: FrameProcessor, spawn: Spawn, wake: WakeGate | None = None,
                 conversation_id: str = "") -> None:
        self.policy = policy
        self.clock = clock
        self.user = user
        self.output = output
        self.turns = turns
        self.metrics = metrics
        #: where the nudge's frames enter (the LLM processor)
        self.entry = entry
        self.spawn = spawn
        self.wake = wake
        self.conversation_id = conversation_id
        #: since when nobody has spoken (None: someone is speaking or a reply is on its way)
        self._quiet_since: float | None = None
        #: since when the person has said nothing (what the LLM is told)
        self._person_quiet_since: float | None = None
        self._turn_seen = turns.value
        self._task: asyncio.Task[Any] | None = None
        #: nudges since the person's last turn, and in all (stats, tests)
        self.in_a_row = 0
        self.nudges = 0

    @property
    def busy(self) -> bool:
        """Someone is speaking, a turn is being settled, a reply is on its way, or the agent is asleep."""
        return (self.user.user_speaking or self.user.in_segment or self.output.replica_active
                or (self._task is not None and not self._task.done())
                or (self.wake is not None and self.wake.asleep))

    def poll(self) -> None:
        """Check the silence (call it often: every pull of the outgoing audio)."""
        now = self.clock.monotonic()
        if self._person_quiet_since is None or self.user.user_speaking or self.user.in_segment:
            self._person_quiet_since = now
        if self.turns.value != self._turn_seen:  # the person took a turn: a new run of nudges
            self._turn_seen = self.turns.value
            self.in_a_row = 0
        if self.busy:
            self._quiet_since = None
            return
        if self._quiet_since is None:
            self._quiet_since = now
            return
        if self.in_a_row >= self.policy.max_nudges or now - self._quiet_since < self.policy.after_s:
            return
        self.in_a_row += 1
        self.nudges += 1
        self._quiet_since = None
        seconds = round(now - self._person_quiet_since)
        self._task = self.spawn(self._nudge(seconds), "idle_engagement")

    async def _nudge(self, seconds: int) -> None:
        turn_idx = self.turns.value
        reply_id = self.turns.next_reply_id()
        inference_id = uuid.uuid4().hex
        logger.info("[%s] the person has been quiet for %d s: the agent speaks up (%d in a row)",
                    self.conversation_id, seconds, self.in_a_row)
        self.metrics.open(reply_id, inference_id, turn_idx, source="idle")
        self.metrics.mark(reply_id, "turn_decided")
        note = NUDGE_NOTE.format(seconds=seconds)
        # committed at once (like conversation.respond): the note enters the history as the
        # person's side of this exchange, and the reply may be heard as soon as it is ready
        await self.entry.queue_frame(TurnCommitFrame(reply_id=reply_id, inference_id=inference_id,
                                                     turn_idx=turn_idx, text=note))
        await self.entry.queue_frame(LLMRunFrame(reply_id=reply_id, inference_id=inference_id,
                                                 turn_idx=turn_idx))
