"""The pipeline's perception hook (``visual_context_provider``) with fake engines: each user
turn sent to the LLM carries the visual context of that moment, the user's
conversation.utterance carries the same text, and older turns keep theirs."""
from __future__ import annotations

from bench.harness import RealtimeDriver
from conversations.realtime import events as ev
from conversations.realtime.protocol import to_wire
from conversations.realtime.agent import ConversationPipeline, EngineBundle
from conversations.realtime.clock import ManualClock
from conversations.realtime.config import PipelineConfig
from conversations.realtime.context import VISUAL_CONTEXT_NOTE
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD, run, words_audio


def _pipeline(provider, *, stt=None, llm=None, layers=None):  # noqa: ANN001, ANN202
    cfg = PipelineConfig.from_layers("You are a test.", "", layers or {})
    engines = EngineBundle(vad=FakeVAD(), tts=FakeTTS(), stt=stt or FakeSTT("What do you see?"),
                           llm=llm or FakeLLM("I see you."))
    clock = ManualClock()
    events: list[dict] = []
    pipe = ConversationPipeline(cfg, engines, conversation_id="cvis", event_sink=lambda e: events.append(to_wire(e, "cvis")), clock=clock,
                                output_sample_rate=16_000, visual_context_provider=provider)
    return pipe, RealtimeDriver(pipe, speed=0, clock=clock), engines, events


def test_spoken_turns_carry_the_visual_context_of_their_moment() -> None:
    seen = iter(["[visual] user present, looking at the screen, smiling",
                 "[visual] user present, looking away; changed: looked away 2s ago"])
    calls: list[str] = []

    def provider() -> str:
        calls.append(text := next(seen))
        return text

    async def main() -> None:
        llm = FakeLLM("I see you.")
        pipe, drv, _, events = _pipeline(provider, llm=llm)
        await pipe.start()
        await drv.play(words_audio(4))
        await drv.wait_event(ev.UTTERANCE, timeout_ms=5000, where=lambda e: e["properties"]["role"] == "replica")
        await drv.silence(500)
        await drv.play(words_audio(4))
        await drv.wait_event(ev.UTTERANCE, timeout_ms=5000, after_ms=drv.t_ms - 1,
                             where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()

        # every request of one turn (speculative and committed) used one reading
        first_turn = [r for r in llm.requests if len([m for m in r if m["role"] == "user"]) == 1]
        assert first_turn and all(r[-1] == {"role": "user", "content": "What do you see?\n[visual] user present, "
                                            "looking at the screen, smiling"} for r in first_turn)
        last = llm.requests[-1]
        assert [m["content"] for m in last if m["role"] == "user"] == [
            "What do you see?\n[visual] user present, looking at the screen, smiling",
            "What do you see?\n[visual] user present, looking away; changed: looked away 2s ago"]
        assert len(calls) == 2, "the provider is asked once per turn"
        users = [e for e in events if e["event_type"] == ev.UTTERANCE and e["properties"]["role"] == "user"]
        assert [u["properties"]["visual_context"] for u in users] == calls
        # the history itself stays what was said; the system prompt explains the [visual] lines
        assert pipe.history[0] == {"role": "user", "content": "What do you see?"}
        assert last[0] == {"role": "system", "content": f"You are a test.\n\n{VISUAL_CONTEXT_NOTE}"}

    run(main())


def test_respond_and_no_provider() -> None:
    async def main() -> None:
        llm = FakeLLM("Hello.")
        pipe, drv, _, events = _pipeline(lambda: "[visual] no one in view", llm=llm)
        await pipe.start()
        await pipe.respond("Are you there?")
        await drv.wait_event(ev.UTTERANCE, timeout_ms=5000, where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()
        assert llm.requests[-1][-1]["content"] == "Are you there?\n[visual] no one in view"
        user = next(e for e in events if e["event_type"] == ev.UTTERANCE and e["properties"]["role"] == "user")
        assert user["properties"] == {"role": "user", "speech": "Are you there?",
                                      "visual_context": "[visual] no one in view"}

        llm2 = FakeLLM("Hello.")
        pipe2, drv2, _, events2 = _pipeline(None, llm=llm2)
        await pipe2.start()
        await pipe2.respond("Are you there?")
        await drv2.wait_event(ev.UTTERANCE, timeout_ms=5000, where=lambda e: e["properties"]["role"] == "replica")
        await pipe2.close()
        assert llm2.requests[-1][-1]["content"] == "Are you there?"
        assert llm2.requests[-1][0] == {"role": "system", "content": "You are a test."}
        user2 = next(e for e in events2 if e["event_type"] == ev.UTTERANCE and e["properties"]["role"] == "user")
        assert "visual_context" not in user2["properties"]

    run(main())


def test_a_failing_provider_never_breaks_the_turn() -> None:
    def broken() -> str:
        raise RuntimeError("camera on fire")

    async def main() -> None:
        llm = FakeLLM("Still here.")
        pipe, drv, _, _ = _pipeline(broken, llm=llm)
        await pipe.start()
        await pipe.respond("Hello?")
        await drv.wait_event(ev.UTTERANCE, timeout_ms=5000, where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()
        assert llm.requests[-1][-1]["content"] == "Hello?"

    run(main())
