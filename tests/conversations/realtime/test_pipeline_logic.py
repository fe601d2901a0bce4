"""The pipeline's behaviours with fake engines: barge-in, history, protocol messages, errors,
cleanup. (The same behaviours with the real engines: test_pipeline_real.py.)"""
from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, make_pipeline, run, words_audio

from conversations.realtime import events as ev
from conversations.realtime.levels import PATIENCE_WAITS
from conversations.realtime.engines.base import FaceRenderer, ToolCall, TTSChunk
from conversations.realtime.protocol import ProtocolError

LONG_REPLY = ("Once upon a time there was a small town by the sea. Every morning the fishermen "
              "went out in their boats. In the evening they came back with their catch. The "
              "children ran to the harbour to meet them.")


def speech_of(rec):  # noqa: ANN001, ANN202
    return [(e["properties"]["role"], e["properties"]["speech"]) for _, e in rec.of_type(ev.UTTERANCE)]


async def _start_reply(pipe, drv):  # noqa: ANN001, ANN202
    await pipe.start()
    await drv.play(words_audio(4))
    hit = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=3000)
    assert hit is not None
    await drv.silence(1000)  # well into the reply
    return hit[0]


def test_barge_in_at_high_interruptibility_stops_audio_within_200ms() -> None:
    async def main() -> None:
        stt = FakeSTT(lambda n: "What time is it?" if n < 6 else "Stop, tell me about the moon.")
        pipe, drv, _ = make_pipeline(stt=stt, llm=FakeLLM(LONG_REPLY),
                                     layers={"conversational_flow": {"replica_interruptibility": "high"}})
        await _start_reply(pipe, drv)
        onset = drv.t_ms
        await drv.play(words_audio(6))
        hit = drv.rec.first(ev.REPLICA_STOPPED, after_ms=onset)
        assert hit is not None and hit[1]["properties"]["interrupted"] is True
        assert hit[0] - onset <= 200
        # not one sample of the reply after that
        out = drv.rec.audio()
        stop = int(hit[0] * 16)
        assert np.any(out[:stop]) and not np.any(out[stop:stop + 16 * 500])
        # the history holds what was heard (whole words, a prefix of the reply), not the rest
        heard = pipe.history[1]["content"]
        assert heard and LONG_REPLY.startswith(heard) and len(heard) < len(LONG_REPLY) / 2
        replica_utt = [s for r, s in speech_of(drv.rec) if r == "replica"]
        assert replica_utt == [heard]
        # ~1.2 s played at 50 ms per character: about 24 characters
        played_s = hit[1]["properties"]["duration"]
        assert abs(len(heard) - played_s * 20) <= 8
        # and the interruption became the user's next turn
        await drv.wait_event(ev.UTTERANCE, timeout_ms=3000, after_ms=hit[0])
        assert pipe.history[2] == {"role": "user", "content": "Stop, tell me about the moon."}
        await pipe.close()

    run(main())


def test_backchannel_does_not_interrupt_at_medium() -> None:
    async def main() -> None:
        stt = FakeSTT(lambda n: "What time is it?" if n >= 4 else "Mm-hmm.")
        pipe, drv, _ = make_pipeline(stt=stt, llm=FakeLLM("It is about three o'clock in the "
                                                          "afternoon, and the sun is still up."))
        await _start_reply(pipe, drv)
        await drv.play(words_audio(2, word_ms=300))  # "mm-hm": 600 ms of voice
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=8000)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        assert pipe.stats["interruptions"] == 0 and pipe.stats["backchannels"] == 1
        await drv.silence(1500)
        assert [r for r, _ in speech_of(drv.rec)] == ["user", "replica"]  # no turn from it
        await pipe.close()

    run(main())


def test_words_interrupt_at_medium() -> None:
    async def main() -> None:
        stt = FakeSTT(lambda n: "What time is it?" if n >= 4 else "Wait, wait, no.")
        pipe, drv, _ = make_pipeline(stt=stt, llm=FakeLLM(LONG_REPLY))
        await _start_reply(pipe, drv)
        onset = drv.t_ms
        await drv.play(words_audio(3))
        hit = drv.rec.first(ev.REPLICA_STOPPED, after_ms=onset)
        assert hit is not None and hit[1]["properties"]["interrupted"] is True
        # 400 ms of speech, then a transcript check
        assert 400 <= hit[0] - onset <= 600
        await pipe.close()

    run(main())


def test_greeting_cannot_be_interrupted() -> None:
    async def main() -> None:
        greeting = "Hello and welcome! I am the test replica, and I am very happy to meet you today."
        stt = FakeSTT(lambda n: "Stop talking right now please.")
        pipe, drv, eng = make_pipeline(
            greeting=greeting, stt=stt,
            layers={"conversational_flow": {"replica_interruptibility": "high"}})
        await pipe.start()
        await drv.silence(500)
        await drv.play(words_audio(5))
        assert await pipe.interrupt() is False  # nor by the client
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        assert speech_of(drv.rec)[0] == ("replica", greeting)
        assert pipe.history[0] == {"role": "assistant", "content": greeting}
        assert pipe.stats["interruptions"] == 0
        await pipe.close()

    run(main())


def test_client_interrupt_stops_the_reply_and_history_keeps_what_was_played() -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Tell me a story."), llm=FakeLLM(LONG_REPLY))
        await _start_reply(pipe, drv)
        t = drv.t_ms
        await pipe.handle_client_message({"message_type": "conversation",
                                          "event_type": "conversation.interrupt"})
        await drv.tick()
        hit = drv.rec.first(ev.REPLICA_STOPPED, after_ms=t - 1)
        assert hit is not None and hit[1]["properties"]["interrupted"] is True
        assert hit[0] - t <= 20
        heard = pipe.history[-1]["content"]
        assert LONG_REPLY.startswith(heard) and 10 < len(heard) < 40
        await pipe.close()

    run(main())


def test_interrupt_before_audio_removes_the_unheard_reply_from_history() -> None:
    async def main() -> None:
        llm = FakeLLM(LONG_REPLY, token_delay_s=0.05)
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Tell me a story."), llm=llm)
        await pipe.start()
        await drv.play(words_audio(4))
        await drv.run_until(lambda: pipe.output.replica_active, timeout_ms=3000)
        assert await pipe.interrupt() is True
        await drv.silence(500)
        assert pipe.history == [{"role": "user", "content": "Tell me a story."}]
        assert drv.rec.of_type(ev.REPLICA_STARTED) == []
        assert llm.closed == llm.started  # the LLM stream was closed
        await pipe.close()

    run(main())


def test_echo_mode_speaks_text_and_plays_audio() -> None:
    async def main() -> None:
        llm = FakeLLM()
        pipe, drv, eng = make_pipeline(mode="echo", llm=llm)
        await pipe.start()
        await pipe.handle_client_message({"event_type": "conversation.echo", "properties": {
            "modality": "text", "text": "Hello from the app.", "done": True}})
        hit = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        assert hit is not None
        assert eng.tts.texts == ["Hello from the app."]
        pcm = (np.sin(np.arange(1, 8001) / 5) * 10000).astype(np.int16)
        b64 = base64.b64encode(pcm.tobytes()).decode()
        t = drv.t_ms
        for i, part in enumerate((b64[:4000], b64[4000:])):  # streamed in two messages
            await pipe.handle_client_message({"event_type": "conversation.echo", "properties": {
                "modality": "audio", "audio": part, "sample_rate": 16000, "inference_id": "inf-1",
                "done": "true" if i else "false"}})
        hit = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000, after_ms=t)
        assert hit is not None and hit[1]["inference_id"] == "inf-1"
        out = drv.rec.audio()[int(t * 16):]
        start = int(np.flatnonzero(out)[0])
        assert np.array_equal(out[start:start + 3000], pcm[:3000])  # played as sent
        # the mic neither makes turns nor interrupts in echo mode
        await drv.play(words_audio(4))
        await drv.silence(2000)
        assert llm.requests == [] and [r for r, _ in speech_of(drv.rec)] == ["replica", "replica"]
        assert drv.rec.of_type(ev.USER_STARTED)
        await pipe.close()

    run(main())


def test_respond_answers_as_if_the_user_had_spoken() -> None:
    async def main() -> None:
        llm = FakeLLM("Paris is the capital of France.")
        events: list[dict] = []
        pipe, drv, _ = make_pipeline(llm=llm, events=events)
        await pipe.start()
        await pipe.handle_client_message({"message_type": "conversation",
                                          "event_type": "conversation.respond",
                                          "properties": {"text": "What is the capital of France?"}})
        await drv.wait_event(ev.UTTERANCE, timeout_ms=5000, where=lambda e: e["properties"]["role"] == "replica")
        assert llm.requests[0][-1] == {"role": "user", "content": "What is the capital of France?"}
        assert speech_of(drv.rec) == [("user", "What is the capital of France?"),
                                      ("replica", "Paris is the capital of France.")]
        types = [e["event_type"] for e in events]
        # the protocol's order: user utterance, replica started/stopped speaking, replica utterance
        order = [types.index(t) for t in (ev.UTTERANCE, ev.REPLICA_STARTED, ev.REPLICA_STOPPED)]
        assert order == sorted(order) and types[-2:] == [ev.UTTERANCE, ev.TURN_METRICS]
        # envelope
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(events) + 1))
        e = events[types.index(ev.REPLICA_STARTED)]
        assert e["conversation_id"] == "ctest" and e["turn_idx"] == 1 and e["inference_id"]
        assert e["message_type"] == "conversation" and isinstance(e["timestamp"], float)
        await pipe.close()

    run(main())


def test_overwrite_and_append_context_reach_the_llm() -> None:
    async def main() -> None:
        llm = FakeLLM("Okay.")
        pipe, drv, _ = make_pipeline(llm=llm, system_prompt="Be brief.", context="PAL context.",
                                     conversational_context="The user is Bob.")
        await pipe.start()
        await pipe.respond("Hi")
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        assert llm.requests[0][0] == {"role": "system",
                                      "content": "Be brief.\n\nPAL context.\n\nThe user is Bob."}
        await pipe.handle_client_message({"event_type": "conversation.overwrite_llm_context",
                                          "properties": {"context": "The user is Alice."}})
        await pipe.handle_client_message({"event_type": "conversation.append_llm_context",
                                          "properties": {"context": "She likes tea."}})
        t = drv.t_ms
        await pipe.respond("Hi again")
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000, after_ms=t)
        system = llm.requests[1][0]["content"]
        assert "Alice" in system and "She likes tea." in system and "Bob" not in system
        assert [m["role"] for m in llm.requests[1][1:]] == ["user", "assistant", "user"]
        await pipe.close()

    run(main())


def test_tool_call_is_emitted_and_tool_result_continues_the_reply() -> None:
    async def main() -> None:
        def reply(messages):  # noqa: ANN001, ANN202
            if messages[-1]["role"] == "tool":
                return f"It is {json.loads(messages[-1]['content'])['temp']} degrees in Paris."
            return "Let me check."

        llm = FakeLLM(reply)
        llm.tool_calls = [ToolCall("call_1", "get_weather", '{"city": "Paris"}')]
        pipe, drv, _ = make_pipeline(llm=llm, layers={"llm": {"tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}]}})
        await pipe.start()
        await pipe.respond("What's the weather in Paris?")
        hit = await drv.wait_event(ev.TOOL_CALL, timeout_ms=3000)
        assert hit is not None
        call = hit[1]["properties"]
        assert call == {"tool_call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
        with pytest.raises(ProtocolError):
            await pipe.handle_client_message({"event_type": "conversation.tool_result",
                                              "properties": {"tool_call_id": "nope", "output": "x"}})
        await pipe.handle_client_message({"event_type": "conversation.tool_result", "properties": {
            "tool_call_id": "call_1", "output": {"temp": 21}, "status": "success"}})
        await drv.wait_event(ev.UTTERANCE, timeout_ms=8000,
                             where=lambda e: "21 degrees" in e["properties"]["speech"])
        assert [m["role"] for m in llm.requests[1][1:]] == ["user", "assistant", "tool"]
        hist = pipe.history
        assert hist[1]["tool_calls"][0]["id"] == "call_1"
        assert hist[2] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"}
        assert hist[3] == {"role": "assistant", "content": "It is 21 degrees in Paris."}
        await pipe.close()

    run(main())


def test_a_repeated_tool_call_is_not_emitted_and_the_reply_is_made_without_tools() -> None:
    async def main() -> None:
        def reply(messages):  # noqa: ANN001, ANN202
            return "It is sunny." if messages[-1]["role"] == "tool" else ""

        llm = FakeLLM(reply)
        call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
        llm.tool_calls = [call]
        pipe, drv, _ = make_pipeline(llm=llm, layers={"llm": {"tools": [
            {"type": "function", "function": {"name": "get_weather"}}]}})
        await pipe.start()
        await pipe.respond("Weather in Paris?")
        assert await drv.wait_event(ev.TOOL_CALL, timeout_ms=3000) is not None
        # the model answers the result by asking again (same call, keys in another order)
        llm.tool_calls = [ToolCall("call_2", "get_weather", '{ "city":"Paris" }')]
        await pipe.tool_result("call_1", "sunny, 23 C")
        utt = await drv.wait_event(ev.UTTERANCE, timeout_ms=5000,
                                   where=lambda e: e["properties"]["role"] == "replica")
        assert utt is not None and utt[1]["properties"]["speech"] == "It is sunny."
        assert len(drv.rec.of_type(ev.TOOL_CALL)) == 1
        assert llm.tools_offered == [True, True, False]
        assert [m["role"] for m in pipe.history] == ["user", "assistant", "tool", "assistant"]
        await pipe.close()

    run(main())


def test_sensitivity_message_changes_the_pause_wait() -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Yes"))
        await pipe.start()
        await pipe.handle_client_message({"event_type": "conversation.sensitivity", "properties": {
            "participant_pause_sensitivity": "high", "participant_interrupt_sensitivity": "low"}})
        assert pipe.user.flow.waits == PATIENCE_WAITS["low"]
        assert pipe.user.flow.interrupt_policy.min_words == 3
        await drv.play(words_audio(1))
        end = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=3000)
        assert hit is not None and hit[0] - end <= 600
        with pytest.raises(ProtocolError):
            await pipe.handle_client_message({"event_type": "conversation.sensitivity",
                                              "properties": {"participant_pause_sensitivity": "x"}})
        await pipe.close()

    run(main())


@pytest.mark.parametrize("message", [
    {"event_type": "conversation.nope"},
    {"event_type": "conversation.respond", "properties": {}},
    {"event_type": "conversation.echo", "properties": {"modality": "video"}},
    {"event_type": "conversation.echo", "properties": {"modality": "audio", "audio": 3}},
    {"event_type": "conversation.overwrite_llm_context", "properties": {"context": 5}},
    {"event_type": "conversation.tool_result", "properties": {}},
    {"event_type": "conversation.respond", "properties": "x"},
])
def test_bad_client_messages_raise_protocol_errors(message: dict) -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline()
        await pipe.start()
        with pytest.raises(ProtocolError):
            await pipe.handle_client_message(message)
        await pipe.close()

    run(main())


def test_engine_failures_become_error_events_and_the_session_goes_on() -> None:
    async def main() -> None:
        stt = FakeSTT("Hello there my friend.")
        llm = FakeLLM("First part. Second part. Third part.")
        tts = FakeTTS()
        pipe, drv, _ = make_pipeline(stt=stt, llm=llm, tts=tts)
        await pipe.start()
        # STT fails: an error event, no turn, no hang
        stt.fail = True
        await drv.play(words_audio(4))
        err = await drv.wait_event(ev.SYSTEM_ERROR, timeout_ms=3000)
        assert err is not None and err[1]["message_type"] == "system"
        assert err[1]["properties"]["reason"] == "stt exploded"
        stt.fail = False
        # LLM fails mid-reply: what was said is played, the reply ends cleanly
        llm.fail_after = 3
        t = drv.t_ms
        await drv.play(words_audio(4))
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=8000, after_ms=t)
        assert stopped is not None
        assert any(e["properties"]["reason"] == "llm exploded" for _, e in drv.rec.of_type(ev.SYSTEM_ERROR))
        assert pipe.history[-1] == {"role": "assistant", "content": "First part. Second"}
        # TTS fails on one phrase: the others are still spoken
        llm.fail_after = None
        tts.fail_on = "Second"
        t = drv.t_ms
        await drv.play(words_audio(4))
        utt = await drv.wait_event(ev.UTTERANCE, timeout_ms=8000, after_ms=t,
                                   where=lambda e: e["properties"]["role"] == "replica")
        assert utt is not None and utt[1]["properties"]["speech"] == "First part. Third part."
        assert pipe.stats["turns"] == 2
        await pipe.close()

    run(main())


class RecordingRenderer(FaceRenderer):
    def __init__(self) -> None:
        self.pushed: list[tuple[int, str]] = []
        self.cleared = 0
        self.pull_count = 0

    def push_audio(self, chunk: TTSChunk) -> None:
        self.pushed.append((self.pull_count, chunk.text))

    def clear(self) -> None:
        self.cleared += 1

    def next_frame(self, t_ms: float) -> np.ndarray:
        return np.zeros((self.height, self.width, 3), np.uint8)

    def played_ms(self) -> float:
        return 0.0


def test_renderer_gets_each_phrase_when_it_starts_playing_and_is_cleared_on_interrupt() -> None:
    async def main() -> None:
        renderer = RecordingRenderer()
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Tell me a story."), llm=FakeLLM(LONG_REPLY),
                                     renderer=renderer)
        await pipe.start()
        await drv.play(words_audio(4))
        started = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=3000)
        assert started is not None
        renderer.pull_count = drv.ticks
        assert [t for _, t in renderer.pushed] == ["Once upon a time there was a small town"]
        await drv.silence(200)
        assert len(renderer.pushed) == 1  # the next phrase is not pushed before it plays
        assert pipe.video_frame(0.0).shape == (512, 512, 3)
        await pipe.interrupt()
        assert renderer.cleared == 1
        await pipe.close()

    run(main())


def test_close_releases_everything() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Tell me a story."), llm=FakeLLM(LONG_REPLY, token_delay_s=0.01))
        await pipe.start()
        await drv.play(words_audio(4))
        await drv.silence(600)  # mid-generation, audio queued
        assert pipe.owned_tasks()
        await pipe.close()
        assert pipe.owned_tasks() == []
        assert asyncio.all_tasks() == before
        pipe.push_audio(np.zeros(320, np.float32), 16_000)  # ignored after close
        with pytest.raises(ProtocolError):
            await pipe.handle_client_message({"event_type": "conversation.interrupt"})

    run(main())
