"""enable_dynamic_greeting: the LLM writes the opening line from the prompt and the conversational
context, and it is spoken the way custom_greeting is (first, never interruptible)."""
from __future__ import annotations

import dataclasses

import pytest

from conversations.realtime import events as ev
from conversations.realtime.actions import DYNAMIC_GREETING_REQUEST
from conversations.realtime.agent import ConversationPipeline, EngineBundle
from conversations.realtime.config import PipelineConfig
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, make_pipeline, run, words_audio


def _speech(drv) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(e["properties"]["role"], e["properties"]["speech"]) for _, e in drv.rec.of_type(ev.UTTERANCE)]


def _dynamic(pipe: ConversationPipeline) -> None:
    pipe.config = dataclasses.replace(pipe.config, dynamic_greeting=True)


def test_the_llm_writes_the_greeting_from_the_prompt_and_context_and_it_cannot_be_interrupted() -> None:
    async def main() -> None:
        llm = FakeLLM("Hi Hassaan, ready to practise handling objections today?")
        pipe, drv, _ = make_pipeline(llm=llm, stt=FakeSTT("Stop right there."),
                                     system_prompt="You are a sales coach.",
                                     conversational_context="You talk to Hassaan about sales objections.",
                                     layers={"conversational_flow": {"replica_interruptibility": "high"}})
        _dynamic(pipe)
        await pipe.start()
        await drv.silence(300)
        await drv.play(words_audio(4))  # speech over the greeting does not stop it
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        request = llm.requests[0]
        assert "sales coach" in request[0]["content"] and "Hassaan" in request[0]["content"]
        assert request[-1] == {"role": "user", "content": DYNAMIC_GREETING_REQUEST}
        assert _speech(drv)[0] == ("replica", "Hi Hassaan, ready to practise handling objections today?")
        # the request is not part of the conversation; the greeting is
        assert pipe.history[0] == {"role": "assistant",
                                   "content": "Hi Hassaan, ready to practise handling objections today?"}
        assert all(m["content"] != DYNAMIC_GREETING_REQUEST for m in pipe.history)
        await pipe.close()

    run(main())


def test_a_custom_greeting_is_spoken_as_is_and_no_llm_greeting_is_asked_for() -> None:
    async def main() -> None:
        llm = FakeLLM("Generated.")
        pipe, drv, _ = make_pipeline(llm=llm, greeting="Fixed hello.")
        _dynamic(pipe)
        await pipe.start()
        assert await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=10_000) is not None
        assert _speech(drv)[0] == ("replica", "Fixed hello.") and llm.requests == []
        await pipe.close()

    run(main())


def test_a_failing_llm_leaves_no_greeting_and_an_error_event() -> None:
    async def main() -> None:
        llm = FakeLLM("never said at all")
        llm.fail_after = 1
        events: list[dict] = []
        pipe, drv, _ = make_pipeline(llm=llm, events=events)
        _dynamic(pipe)
        await pipe.start()
        await drv.silence(500)
        assert not [e for _, e in drv.rec.of_type(ev.UTTERANCE) if e["properties"]["role"] == "replica"]
        assert any("dynamic greeting failed" in (e.get("properties") or {}).get("reason", "") for e in events)
        assert pipe.history == []
        await pipe.close()

    run(main())


@pytest.mark.slow
def test_the_embedded_llm_writes_a_greeting() -> None:
    from bench.harness import RealtimeDriver
    from conversations.realtime.engines import registry

    engines = EngineBundle(vad=registry.get_vad(), stt=registry.get_stt(), llm=registry.get_llm(),
                           tts=registry.get_tts())
    cfg = PipelineConfig.from_layers("You are Ana, the receptionist of the Blue Harbour Hotel.", "", {},
                                     dynamic_greeting=True)

    async def main() -> None:
        pipe = ConversationPipeline(cfg, engines, conversation_id="cgreet")
        drv = RealtimeDriver(pipe, speed=1.0)
        await pipe.start()
        said = await drv.wait_event(ev.UTTERANCE, timeout_ms=120_000)
        assert said is not None and said[1]["properties"]["role"] == "replica"
        text = said[1]["properties"]["speech"]
        assert text and DYNAMIC_GREETING_REQUEST not in text
        assert pipe.history[0]["role"] == "assistant" and pipe.history[0]["content"] == text
        await pipe.close()

    run(main(), timeout=180)
