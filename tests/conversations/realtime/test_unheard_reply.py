"""A reply the user has not heard yet is never thrown away silently: speaking again before it
plays makes one reply for both turns; a cough keeps it; a late reply says the agent is
thinking. (Fake engines: the logic in isolation, in pipeline time.)"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, make_pipeline, run, words_audio

from conversations.realtime import events as ev
from conversations.realtime.engines.base import LLMDelta


class GatedLLM(FakeLLM):
    """Holds every reply until the test opens the gate: a busy box, in pipeline time."""

    def __init__(self, reply: str = "It is three o'clock.") -> None:
        super().__init__(reply)
        self.gate = asyncio.Event()
        self.cancelled = 0

    async def stream(self, messages: Sequence[dict[str, Any]], *, tools=None,  # noqa: ANN001
                     max_tokens: int = 256, temperature: float = 0.7) -> AsyncIterator[LLMDelta]:
        self.requests.append([dict(m) for m in messages])
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        for i, word in enumerate(self.reply.split(" ")):
            yield LLMDelta(text=word if i == 0 else " " + word)


def _script(n: int) -> str:
    return {4: "What time is it?", 3: "And the date?"}.get(n, "")


def user_speech(drv) -> list[str]:  # noqa: ANN001
    return [e["properties"]["speech"] for _, e in drv.rec.of_type(ev.UTTERANCE)
            if e["properties"]["role"] == "user"]


async def _a_decided_turn_whose_reply_is_pending():  # noqa: ANN202
    llm = GatedLLM()
    pipe, drv, _ = make_pipeline(stt=FakeSTT(_script), llm=llm)
    await pipe.start()
    await drv.play(words_audio(4))
    assert await drv.wait_event(ev.UTTERANCE, timeout_ms=5000) is not None  # the turn is decided
    assert len(llm.requests) == 1  # and its reply is being generated (held by the gate)
    return llm, pipe, drv


def test_speaking_again_before_the_reply_is_heard_gets_one_reply_for_both_turns() -> None:
    async def main() -> None:
        llm, pipe, drv = await _a_decided_turn_whose_reply_is_pending()
        # the reply is late: the page is told the agent is thinking (once)
        thinking = await drv.wait_event(ev.REPLICA_THINKING, timeout_ms=3000)
        assert thinking is not None
        assert thinking[1]["inference_id"] == drv.rec.of_type(ev.UTTERANCE)[0][1]["inference_id"]
        # the person speaks again before hearing anything
        await drv.play(words_audio(3))
        assert await drv.run_until(lambda: len(llm.requests) == 2, timeout_ms=5000)
        assert llm.cancelled == 1
        # the new reply is asked for both turns, and both are in the transcript
        last_user = [m for m in llm.requests[-1] if m["role"] == "user"][-1]["content"]
        assert "What time is it?" in last_user and "And the date?" in last_user
        assert user_speech(drv) == ["What time is it?", "And the date?"]
        llm.gate.set()
        started = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=5000)
        assert started is not None
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        assert pipe.stats["interruptions"] == 0
        assert [m["role"] for m in pipe.history] == ["user", "user", "assistant"]
        assert len(drv.rec.of_type(ev.REPLICA_THINKING)) == 1
        await pipe.close()

    run(main())


def test_a_cough_while_the_reply_is_pending_keeps_the_reply() -> None:
    async def main() -> None:
        llm, pipe, drv = await _a_decided_turn_whose_reply_is_pending()
        await drv.play(words_audio(1))  # one burst: no words (a cough)
        await drv.silence(2000)
        assert len(llm.requests) == 1 and llm.cancelled == 0
        llm.gate.set()
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        assert user_speech(drv) == ["What time is it?"]
        assert pipe.history[-1] == {"role": "assistant", "content": "It is three o'clock."}
        await pipe.close()

    run(main())


def test_a_prompt_reply_does_not_say_thinking() -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline(stt=FakeSTT(_script), llm=FakeLLM("It is three o'clock."))
        await pipe.start()
        await drv.play(words_audio(4))
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000)
        assert stopped is not None
        assert drv.rec.of_type(ev.REPLICA_THINKING) == []
        await pipe.close()

    run(main())
