"""The replica's thinking and voice: the LLM and TTS processors.

``LLMProcessor`` turns a user transcript (speculative or committed) into a streamed reply:
``ReplyStartFrame``, ``LLMTextFrame`` s, ``ToolCallFrame`` s, ``ReplyEndFrame``. It writes
the history: the user's turn when it is committed, the generated reply when it is complete
and committed (the output processor later cuts it to what was played if it is
interrupted). A speculative reply's result waits for its commit, or is thrown away.

``TTSProcessor`` cuts the text into phrases (``phrases.PhraseSplitter``) and synthesises
each as soon as it is complete, passing ``TTSAudioFrame`` s (with the engine's word and
phoneme timings) to the output.

An engine failure becomes a ``system.error`` event and the reply ends cleanly (what was
already synthesised is still played); a cancelled reply (interruption, discard) stops its
engine call at once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from .clock import Clock
from .config import LLMConfig
from .context import ConversationContext, repeats_answered_call
from .engines.base import LanguageModel, LLMDelta, TextToSpeech, ToolCall, TTSChunk, VoiceOptions
from .events import EventEmitter
from .metrics import MetricsBook
from .frames import (
    CancelFrame,
    Frame,
    InterruptionFrame,
    LLMRunFrame,
    LLMTextFrame,
    ReplyEndFrame,
    ReplyStartFrame,
    TextFrame,
    ToolCallFrame,
    TTSAudioFrame,
    TurnCommitFrame,
    TurnDiscardFrame,
    UserTranscriptFrame,
)
from .emotion import NEUTRAL, EmotionalPhrases
from .processors import FrameProcessor, error_frame_from

logger = logging.getLogger(__name__)

LLM_FIRST_TOKEN_TIMEOUT_S = 45.0  # queued behind other sessions on a busy box
LLM_NEXT_TOKEN_TIMEOUT_S = 20.0
TTS_TIMEOUT_S = 15.0


async def _aclose(it: Any) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the stream is being abandoned anyway
            logger.debug("closing a stream failed", exc_info=True)


class LLMProcessor(FrameProcessor):
    def __init__(self, *, llm: LanguageModel, context: ConversationContext, config: LLMConfig,
                 emitter: EventEmitter, metrics: MetricsBook, clock: Clock) -> None:
        super().__init__(name="llm")
        self.llm = llm
        self.context = context
        self.config = config
        self.emitter = emitter
        self.metrics = metrics
        self.clock = clock
        self._committed: set[int] = set()
        self._results: dict[int, tuple[str, list[ToolCall]]] = {}  # speculative, awaiting commit
        # the generation in progress: (reply_id, texts, tool calls)
        self._live: tuple[int, list[str], list[ToolCall]] | None = None

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, TurnCommitFrame):
            self._committed.add(frame.reply_id)
            self.context.add_user(frame.reply_id, frame.text)
            result = self._results.pop(frame.reply_id, None)
            if result is not None:
                self.context.add_assistant(frame.reply_id, result[0], result[1])
            elif self._live is not None and self._live[0] == frame.reply_id and self._live[2]:
                # tool calls already made must be in the history before the client answers
                _, texts, calls = self._live
                self.context.add_assistant(frame.reply_id, "".join(texts), calls)
        elif isinstance(frame, TurnDiscardFrame):
            self._results.pop(frame.reply_id, None)
        elif isinstance(frame, (InterruptionFrame, CancelFrame)):
            self._results.clear()
        elif isinstance(frame, UserTranscriptFrame):
            pending = None if frame.reply_id in self._committed else (frame.reply_id, frame.text)
            await self._generate(frame.reply_id, frame.inference_id, frame.turn_idx, pending)
            return
        elif isinstance(frame, LLMRunFrame):
            await self._generate(frame.reply_id, frame.inference_id, frame.turn_idx, None)
            return
        await self.push_frame(frame)

    async def _generate(self, reply_id: int | None, inference_id: str, turn_idx: int,
                        pending: tuple[int, str] | None) -> None:
        assert reply_id is not None
        await self.push_frame(ReplyStartFrame(reply_id=reply_id, inference_id=inference_id, turn_idx=turn_idx,
                                              user_text=pending[1] if pending else self.context.user_text(reply_id)))
        self.metrics.mark(reply_id, "llm_started")
        texts: list[str] = []
        calls: list[ToolCall] = []
        self._live = (reply_id, texts, calls)
        error = ""
        tools = self.config.tool_schemas()
        answered = self.context.answered_tool_calls() if tools else set()
        try:
            # Small models often answer a tool result by calling the same tool again, which
            # would loop through the client forever: such a repeat is dropped and the reply
            # is generated once more without tools, so it has to use the result it has.
            for attempt_tools in (tools, None):
                repeated = await self._stream(reply_id, self.context.messages(pending),
                                              attempt_tools, answered, texts, calls)
                if not repeated or texts or not attempt_tools:
                    break
                logger.info("[%s] the LLM repeated an answered tool call; answering without tools",
                            self.emitter.conversation_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - engine failure: error event, clean end
            err = error_frame_from(exc, reply_id=reply_id)
            error = err.message
            logger.warning("[%s] LLM failed: %s", self.emitter.conversation_id, err.message)
            self.emitter.error(err.message, engine=err.engine or self.llm.name, code=err.code,
                               inference_id=inference_id, turn_idx=turn_idx)
            self.metrics.update(reply_id, error=err.message)
            await self.push_frame(err)
        finally:
            self._live = None
        text = "".join(texts).strip()
        if reply_id in self._committed:
            self.context.add_assistant(reply_id, text, calls)
        else:
            self._results[reply_id] = (text, calls)
        await self.push_frame(ReplyEndFrame(reply_id=reply_id, error=error))

    async def _stream(self, reply_id: int, messages: list[dict[str, Any]],
                      tools: list[dict[str, Any]] | None, answered: set[tuple[str, str]],
                      texts: list[str], calls: list[ToolCall]) -> bool:
        """Stream one completion into the reply. Returns True if it stopped at a repeat of
        an answered tool call."""
        stream: AsyncIterator[LLMDelta] = self.llm.stream(
            messages, tools=tools, max_tokens=self.config.max_tokens,
            temperature=self.config.temperature)
        try:
            timeout = LLM_FIRST_TOKEN_TIMEOUT_S
            while True:
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(timeout):
                        delta = await anext(stream)
                except StopAsyncIteration:
                    return False
                timeout = LLM_NEXT_TOKEN_TIMEOUT_S
                if delta.text:
                    self.metrics.mark(reply_id, "llm_first_token")
                    texts.append(delta.text)
                    await self.push_frame(LLMTextFrame(reply_id=reply_id, text=delta.text))
                if delta.tool_call is not None:
                    if repeats_answered_call(delta.tool_call, answered):
                        return True
                    self.metrics.mark(reply_id, "llm_first_token")
                    calls.append(delta.tool_call)
                    if reply_id in self._committed:
                        self.context.add_assistant(reply_id, "".join(texts), [delta.tool_call])
                    await self.push_frame(ToolCallFrame(reply_id=reply_id, call=delta.tool_call))
        finally:
            await _aclose(stream)


class TTSProcessor(FrameProcessor):
    def __init__(self, *, tts: TextToSpeech, voice: VoiceOptions, emitter: EventEmitter,
                 metrics: MetricsBook, emotions: bool = False) -> None:
        super().__init__(name="tts")
        self.tts = tts
        self.voice = voice
        self.emitter = emitter
        self.metrics = metrics
        #: tts_emotion_control: emotion tags change the voice (else they are only removed)
        self.emotions = emotions
        self._splitters: dict[int, EmotionalPhrases] = {}
        self._replies: dict[int, ReplyStartFrame] = {}
        self.phrases: list[str] = []  # every phrase spoken (bounded; tests, debugging)

    def _splitter(self, reply_id: int) -> EmotionalPhrases:
        sp = self._splitters.get(reply_id)
        if sp is None:
            sp = self._splitters[reply_id] = EmotionalPhrases(enabled=self.emotions)
        return sp

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, ReplyStartFrame):
            self._splitters[frame.reply_id] = EmotionalPhrases(enabled=self.emotions)
            self._replies[frame.reply_id] = frame
        elif isinstance(frame, LLMTextFrame):
            for phrase, emotion in self._splitter(frame.reply_id).push(frame.text):
                await self._speak(frame.reply_id, phrase, emotion)
            return
        elif isinstance(frame, TextFrame):
            sp = self._splitter(frame.reply_id)
            for phrase, emotion in sp.push(frame.text) + sp.flush():
                await self._speak(frame.reply_id, phrase, emotion)
            return
        elif isinstance(frame, ReplyEndFrame):
            sp = self._splitters.pop(frame.reply_id, None)
            if sp is not None:
                for phrase, emotion in sp.flush():
                    await self._speak(frame.reply_id, phrase, emotion)
            self._replies.pop(frame.reply_id, None)
        elif isinstance(frame, TurnDiscardFrame):
            self._splitters.pop(frame.reply_id, None)
            self._replies.pop(frame.reply_id, None)
        elif isinstance(frame, (InterruptionFrame, CancelFrame)):
            self._splitters.clear()
            self._replies.clear()
        await self.push_frame(frame)

    async def _speak(self, reply_id: int | None, phrase: str, emotion: str = NEUTRAL.name) -> None:
        self.metrics.mark(reply_id, "first_phrase")
        self.phrases.append(phrase)
        del self.phrases[:-200]
        voice = self.voice if emotion == NEUTRAL.name else dataclasses.replace(self.voice, emotion=emotion)
        stream = self.tts.synthesize(phrase, voice=voice)
        try:
            while True:
                try:
                    async with asyncio.timeout(TTS_TIMEOUT_S):
                        chunk: TTSChunk = await anext(stream)
                except StopAsyncIteration:
                    break
                if not len(chunk.pcm):
                    continue
                self.metrics.mark(reply_id, "tts_first_audio")
                await self.push_frame(TTSAudioFrame(reply_id=reply_id, chunk=chunk))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - skip the phrase, keep the reply going
            err = error_frame_from(exc, reply_id=reply_id)
            start = self._replies.get(reply_id) if reply_id is not None else None
            logger.warning("[%s] TTS failed: %s", self.emitter.conversation_id, exc)
            self.emitter.error(err.message, engine=err.engine or self.tts.name, code=err.code,
                               inference_id=start.inference_id if start else None,
                               turn_idx=start.turn_idx if start else None)
            self.metrics.update(reply_id, error=err.message)
            await self.push_frame(err)
        finally:
            await _aclose(stream)
