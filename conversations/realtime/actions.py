"""What a conversation is asked to do besides answering speech: the pipeline's actions.

:class:`PipelineActions` is the part of ``ConversationPipeline`` (agent.py) that puts replies
into the chain from outside the user's speech: scripted speech and greetings (``say``, the
dynamic greeting), and the interactions protocol's commands (``conversation.echo`` as text or
audio, ``respond``, ``interrupt``, ``sensitivity``, ``tool_result``; protocol.py checks the
messages and calls these). A reply enters after the user side, at ``_reply_entry``, as the
frames a decided turn would bring. An action the pipeline's state refuses raises
:class:`~.protocol.ProtocolError`.
"""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from .emotion import strip_tags
from .frames import (
    DataFrame,
    InterruptionFrame,
    LLMRunFrame,
    LLMTextFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    ReplyKind,
    ReplyStartFrame,
    TurnCommitFrame,
    UserTranscriptFrame,
)
from .protocol import ProtocolError
from .structured import complete_text

if TYPE_CHECKING:
    from .context import ConversationContext
    from .events import EventEmitter
    from .guardrails import GuardrailProcessor
    from .metrics import MetricsBook
    from .output import AudioOutputProcessor
    from .processors import FrameProcessor
    from .stages import LLMProcessor
    from .turn_taking import TurnCounter, UserTurnProcessor

logger = logging.getLogger(__name__)

#: enable_dynamic_greeting: what the LLM is asked (after the prompt, never kept in the history)
DYNAMIC_GREETING_REQUEST = ("(The call has just started and the person has joined. Greet them now in one or two "
                            "short spoken sentences that fit your role and what you know about this conversation. "
                            "Reply with the greeting only.)")
DYNAMIC_GREETING_TIMEOUT_S = 20.0
DYNAMIC_GREETING_MAX_TOKENS = 60


class PipelineActions:
    """Mixed into ``ConversationPipeline``, which provides these parts."""

    conversation_id: str
    config: Any
    engines: Any
    echo_mode: bool
    context: ConversationContext
    events: EventEmitter
    metrics: MetricsBook
    turns: TurnCounter
    user: UserTurnProcessor
    llm: LLMProcessor | None
    guardrails: GuardrailProcessor | None
    output: AudioOutputProcessor
    _reply_entry: FrameProcessor
    _open_echo: dict[str, tuple[int, str]]
    _echo_text: dict[int, list[str]]
    _closed: bool

    def _new_reply(self, *, turn_idx: int, inference_id: str | None = None) -> tuple[int, str]:
        return self.turns.next_reply_id(), inference_id or uuid.uuid4().hex

    async def _push_reply_frames(self, frames: list[Any]) -> None:
        for f in frames:
            await self._reply_entry.queue_frame(f)

    async def say(self, text: str, *, kind: ReplyKind = "echo", interruptible: bool = True,
                  inference_id: str | None = None) -> int:
        """Speak ``text`` as is (greeting, scripted speech); it enters the history."""
        turn_idx = self.turns.value
        reply_id, inference_id = self._new_reply(turn_idx=turn_idx, inference_id=inference_id)
        self.context.add_assistant(reply_id, strip_tags(text))  # emotion tags are for the voice only
        await self._push_reply_frames([
            TurnCommitFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx, text=""),
            ReplyStartFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx,
                            kind=kind, interruptible=interruptible),
            LLMTextFrame(reply_id=reply_id, text=text),
            ReplyEndFrame(reply_id=reply_id),
        ])
        return reply_id

    async def echo_text(self, text: str, *, inference_id: str | None = None, done: bool = True) -> None:
        """``conversation.echo`` (text): speak it; pieces with one inference_id stream."""
        reply_id, new = await self._echo_reply(inference_id)
        frames: list[DataFrame] = []
        if text:
            self._echo_text.setdefault(reply_id, []).append(text)
            frames.append(LLMTextFrame(reply_id=reply_id, text=text))
        if done:
            frames.append(ReplyEndFrame(reply_id=reply_id))
            self._close_echo(inference_id, reply_id)
        await self._push_reply_frames(frames)

    async def echo_audio(self, pcm: np.ndarray, sample_rate: int, *, inference_id: str | None = None,
                         done: bool = True) -> None:
        """``conversation.echo`` (audio): play int16 PCM as is."""
        reply_id, _ = await self._echo_reply(inference_id)
        frames: list[DataFrame] = []
        if len(pcm):
            frames.append(OutputAudioFrame(reply_id=reply_id, pcm=np.asarray(pcm, np.int16),
                                           sample_rate=sample_rate))
        if done:
            frames.append(ReplyEndFrame(reply_id=reply_id))
            self._close_echo(inference_id, reply_id)
        await self._push_reply_frames(frames)

    async def _echo_reply(self, inference_id: str | None) -> tuple[int, bool]:
        if inference_id and inference_id in self._open_echo:
            return self._open_echo[inference_id][0], False
        turn_idx = self.turns.value
        reply_id, iid = self._new_reply(turn_idx=turn_idx, inference_id=inference_id)
        if inference_id:
            self._open_echo[inference_id] = (reply_id, "echo")
        await self._push_reply_frames([
            TurnCommitFrame(reply_id=reply_id, inference_id=iid, turn_idx=turn_idx, text=""),
            ReplyStartFrame(reply_id=reply_id, inference_id=iid, turn_idx=turn_idx, kind="echo",
                            interruptible=True),
        ])
        return reply_id, True

    def _close_echo(self, inference_id: str | None, reply_id: int) -> None:
        if inference_id:
            self._open_echo.pop(inference_id, None)
        text = strip_tags(" ".join(self._echo_text.pop(reply_id, [])).strip())
        if text:
            self.context.add_assistant(reply_id, text)

    async def respond(self, text: str, *, inference_id: str | None = None) -> int:
        """``conversation.respond``: answer ``text`` as if the user had said it."""
        if self.echo_mode or self.llm is None:
            raise ProtocolError("conversation.respond needs pipeline_mode full")
        if self.output.replica_active and self.output.replica_interruptible:
            await self.interrupt()
        turn_idx = self.turns.advance()
        reply_id, inference_id = self._new_reply(turn_idx=turn_idx, inference_id=inference_id)
        self.metrics.open(reply_id, inference_id, turn_idx, source="respond")
        self.metrics.mark(reply_id, "turn_decided")
        self.metrics.mark(reply_id, "transcript_final")
        self.events.user_turn(text, inference_id=inference_id, turn_idx=turn_idx)
        await self._push_reply_frames([
            TurnCommitFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx, text=text),
            UserTranscriptFrame(reply_id=reply_id, text=text, inference_id=inference_id,
                                turn_idx=turn_idx),
        ])
        return reply_id

    async def interrupt(self) -> bool:
        """``conversation.interrupt``: stop the replica now (not the greeting). Returns
        whether anything was interrupted."""
        if not self.output.replica_active or not self.output.replica_interruptible:
            return False
        # through the user side too: a speculative reply it holds is flushed downstream
        await self.user.queue_frame(InterruptionFrame(reason="client"))
        return True

    def set_sensitivity(self, *, pause: Any = None, interrupt: Any = None) -> None:
        """``conversation.sensitivity``: override the pause / interrupt sensitivity."""
        try:
            flow = self.user.flow.with_sensitivity(pause=pause, interrupt=interrupt)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        self.user.set_flow(flow)

    async def tool_result(self, tool_call_id: Any, output: Any, *, status: str = "") -> int | None:
        """``conversation.tool_result``: add it to the history as a tool message; once every
        tool call of that reply has its result, the LLM goes on from there."""
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise ProtocolError("conversation.tool_result needs properties.tool_call_id")
        if self.llm is None:
            raise ProtocolError("conversation.tool_result needs pipeline_mode full")
        if not self.context.has_tool_call(tool_call_id):
            raise ProtocolError(f"unknown tool_call_id: {tool_call_id}")
        if self.context.has_tool_result(tool_call_id):
            raise ProtocolError(f"tool_call_id {tool_call_id} already has a result")
        if output is None:
            output = ""
        self.context.add_tool_result(tool_call_id, output, status)
        if self.context.unanswered_tool_calls(tool_call_id):
            return None
        turn_idx = self.turns.value
        reply_id, inference_id = self._new_reply(turn_idx=turn_idx)
        self.metrics.open(reply_id, inference_id, turn_idx, source="tool_result")
        await self._push_reply_frames([
            TurnCommitFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx, text=""),
            LLMRunFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx),
        ])
        return reply_id

    async def _dynamic_greeting(self) -> None:
        """enable_dynamic_greeting: the LLM writes the opening line from the prompt and the
        conversational context, then it is spoken the way custom_greeting is (never
        interruptible). Skipped if the person spoke first, the LLM fails (an error event) or the
        greeting breaks one of the PAL's guardrails (``conversation.guardrail.triggered``)."""
        messages = self.context.messages() + [{"role": "user", "content": DYNAMIC_GREETING_REQUEST}]
        try:
            text = await complete_text(self.engines.llm, messages, max_tokens=DYNAMIC_GREETING_MAX_TOKENS,
                                       temperature=self.config.llm.temperature, timeout_s=DYNAMIC_GREETING_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - no greeting; the call goes on
            logger.warning("[%s] dynamic greeting failed: %s", self.conversation_id, exc)
            self.events.error(f"dynamic greeting failed: {exc}", engine=getattr(self.engines.llm, "name", "llm"))
            return
        if not text or self.turns.value != 0 or self._closed:
            return
        if self.guardrails is not None and not await self.guardrails.screen(text, turn_idx=self.turns.value):
            logger.info("[%s] the dynamic greeting broke a guardrail: not spoken", self.conversation_id)
            return
        if self.turns.value == 0 and not self._closed:  # again: the person may have spoken during the check
            await self.say(text, kind="greeting", interruptible=False)
